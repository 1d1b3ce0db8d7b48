//! Integration tests of the release tool, one test binary.

mod demo;
mod entries;
mod review;
mod submit;
