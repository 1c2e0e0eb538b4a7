//! `ha-lb import-keepalived`: reads a keepalived.conf and writes the equivalent ha-lb config.
