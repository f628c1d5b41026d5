// placeholder until the replication bench lands
fn main() {}
