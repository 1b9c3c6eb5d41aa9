//go:build !(linux || darwin || freebsd)

package broker

// diskSpace is -1, -1, unknown, where the broker has no statfs to ask: as
// Kafka answers when it cannot tell.
func diskSpace(string) (total, usable int64) { return -1, -1 }
