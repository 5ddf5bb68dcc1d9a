//! One module per subcommand.

pub mod demo;
pub mod diff;
pub mod doctor;
pub mod flame;
pub mod record;
pub mod run;
pub mod serve;
pub mod top;
