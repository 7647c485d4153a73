//! The one integration test binary: the real guardsh, through real shims, against fake tools, and
//! against real psql (with a PostgreSQL server), aws (with moto) and kubectl.

mod support;

mod admin;
mod agents;
mod approval;
mod aws;
mod catalogs;
mod corpus;
mod custody;
mod differential;
mod escapes;
mod faults;
mod gate;
mod kubectl;
mod layers;
mod mint_attacks;
mod mint_bao;
mod mint_pg;
mod mint_run;
mod mint_run_more;
mod mint_sts;
mod postgres;
mod real_agents;
mod rego;
mod regression;
mod signature;
mod sql;
mod ux;
