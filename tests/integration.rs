//! The one integration test binary: the real guardsh, through real shims, against fake tools and a real
//! PostgreSQL.

mod support;

mod admin;
mod approval;
mod corpus;
mod faults;
mod gate;
mod layers;
mod postgres;
mod regression;
mod signature;
mod sql;
