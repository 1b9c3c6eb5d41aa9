// Package bufpool recycles large byte buffers. A broker serving consumers
// reads and sends megabytes per Fetch; allocating those buffers anew costs
// the zeroing of their memory and the garbage collector's time to find them
// again. Buffers come in power-of-two size classes from 64 KiB to 64 MiB;
// smaller or larger requests are plain allocations.
package bufpool

import (
	"math/bits"
	"sync"
)

const (
	minShift = 16 // 64 KiB
	maxShift = 26 // 64 MiB
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
