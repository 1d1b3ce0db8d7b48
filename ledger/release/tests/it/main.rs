//! Integration tests of the release tool, one test binary.

mod demo;
mod entries;
mod submit;
