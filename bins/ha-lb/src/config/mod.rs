//! The ha-lb TOML configuration: schema, defaults and validation.
