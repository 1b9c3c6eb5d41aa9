package log

import "sort"

// OffsetForTimestamp finds the first record whose timestamp is at least ts
// (milliseconds since the epoch), as a ListOffsets request by timestamp
// asks, and returns its offset and timestamp; offset -1 if no record is that
// recent. The time index narrows the search to a few batches.
func (l *Log) OffsetForTimestamp(ts int64) (offset, timestamp int64, err error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return 0, 0, ErrClosed
	}
	for _, s := range l.segments {
		if err := s.indexes(); err != nil {
			return 0, 0, err
		}
		if s.largestTimestamp() < ts {
			continue
		}
		// Time index entries hold the largest timestamp up to a batch: start
		// from the last entry still below ts; no earlier batch can qualify.
		position := int64(0)
		i := sort.Search(len(s.times.entries), func(i int) bool { return s.times.entries[i].timestamp >= ts })
		if i > 0 {
			if position, err = s.find(s.base + int64(s.times.entries[i-1].relOffset)); err != nil {
				return 0, 0, err
			}
		}
		for position < s.size {
			h, err := s.headerAt(position)
			if err != nil {
				return 0, 0, err
			}
			if h.maxTimestamp >= ts {
				b, err := s.read(position, 1)
				if err != nil {
					return 0, 0, err
				}
				recs, err := batchRecords(b)
				if err != nil {
					return 0, 0, err
				}
				for _, r := range recs {
					// Records below the start (DeleteRecords) are gone.
					if r.Offset >= l.start && r.Timestamp.UnixMilli() >= ts {
						return r.Offset, r.Timestamp.UnixMilli(), nil
					}
				}
			}
			position += h.size
		}
	}
	return -1, -1, nil
}
