package bufpool

import "testing"

func TestGetGivesTheLengthAskedAndAClassCapacity(t *testing.T) {
	for _, tc := range []struct{ n, cap int }{
		{1, 1}, {64<<10 - 1, 64<<10 - 1}, {64 << 10, 64 << 10}, {64<<10 + 1, 128 << 10},
		{1 << 20, 1 << 20}, {16 << 20, 16 << 20}, {16<<20 + 1, 16<<20 + 1}, {64 << 20, 64 << 20},
	} {
		b := Get(tc.n)
		if len(b) != tc.n || cap(b) != tc.cap {
			t.Errorf("Get(%d): len %d cap %d, want len %d cap %d", tc.n, len(b), cap(b), tc.n, tc.cap)
		}
		Put(b)
	}
}

func TestForeignBuffersAreNotPooled(t *testing.T) {
	Put(make([]byte, 0, 100<<10)) // not a class size: ignored, no panic
	Put(make([]byte, 0, 32<<20))  // a power of two above the largest class: ignored
	Put(nil)
}
