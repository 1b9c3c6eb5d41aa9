package broker

// RequestBytesInUse is how much of queued.max.request.bytes the broker's
// connections hold, for the tests of package broker_test to wait on.
func (b *Broker) RequestBytesInUse() int64 { return b.requests.inUse() }

// HoldReplicaOpening makes every broker of this process call hold with the
// topic's name before it opens a replica's log, until restore is called.
func HoldReplicaOpening(hold func(topic string)) (restore func()) {
	openReplicaHook.Store(&hold)
	return func() { openReplicaHook.Store(nil) }
}
