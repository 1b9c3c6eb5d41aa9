// Package bufpool recycles large byte buffers. A broker serving consumers
// reads and sends megabytes per Fetch; allocating those buffers anew costs
// the zeroing of their memory and the garbage collector's time to find them
// again. Buffers come in power-of-two size classes from 64 KiB to 16 MiB;
// smaller or larger requests are plain allocations.
//
// What the pool holds is memory the broker keeps, so it is capped: a
// buffer above 16 MiB is never pooled, and goes back to the garbage
// collector (and then to the operating system) as soon as it is dropped.
// The buffers a broker reuses all the time are smaller: a partition's
// fetch (max.partition.fetch.bytes and replica.fetch.max.bytes, 1 MiB), a
// follower's whole fetch response (replica.fetch.response.max.bytes,
// 10 MiB), a producer's request (max.request.size, 1 MiB). A larger one
// comes from a rare, large request or response; keeping it would save
// little and, after a burst of them, hold hundreds of megabytes. The
// pooled ones go too once unused: a sync.Pool drops what no one took back
// within two garbage collections.
package bufpool

import (
	"math/bits"
	"sync"
)

const (
	minShift = 16 // 64 KiB
	maxShift = 24 // 16 MiB: see the package comment
)

var pools [maxShift - minShift + 1]sync.Pool

// class returns the pool for buffers of capacity 1<<shift, and that shift,
// for the smallest class that holds n bytes; ok is false outside the classes.
func class(n int) (shift int, ok bool) {
	if n < 1<<minShift {
		return 0, false
	}
	shift = bits.Len(uint(n - 1))
	return shift, shift <= maxShift
}

// Get returns a buffer of length n. Its contents are whatever was there
// before: the caller overwrites all of it.
func Get(n int) []byte {
	shift, ok := class(n)
	if !ok {
		return make([]byte, n)
	}
	if p, _ := pools[shift-minShift].Get().(*[]byte); p != nil {
		return (*p)[:n]
	}
	return make([]byte, n, 1<<shift)
}

// Put gives back a buffer that Get returned, once nothing refers to it.
// Buffers not of a class's exact capacity are left to the garbage collector.
func Put(b []byte) {
	c := cap(b)
	shift, ok := class(c)
	if !ok || c != 1<<shift {
		return
	}
	b = b[:0]
	pools[shift-minShift].Put(&b)
}
