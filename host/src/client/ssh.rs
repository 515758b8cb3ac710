//! Reaching a client over ssh (russh): to be written.
