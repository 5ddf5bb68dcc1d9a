//! One module per subcommand.

pub mod doctor;
pub mod run;
pub mod top;
