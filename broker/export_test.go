package broker

// RequestBytesInUse is how much of queued.max.request.bytes the broker's
// connections hold, for the tests of package broker_test to wait on.
func (b *Broker) RequestBytesInUse() int64 { return b.requests.inUse() }
