package producer

// RequestsInFlight is how many Produce requests await their answers: a
// test waits for it to know that requests are in flight together. This
// file is compiled only with the tests.
func (p *Producer) RequestsInFlight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, k := range p.inFlight {
		n += k
	}
	return n
}
