package log

import "time"

// EnforceRetention deletes the oldest segments that are past retention.ms
// (their newest record is older than that) or that retention.bytes says the
// log can do without, and any left wholly below the log start offset
// (AdvanceStart), and returns how many it deleted. Whole segments go, so
// the log start offset jumps to the next segment's base offset. The active
// segment is never deleted. Logs whose cleanup.policy lacks "delete" keep
// everything.
func (l *Log) EnforceRetention(now time.Time) (int, error) {
	l.cleanMu.Lock()
	defer l.cleanMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	if !l.cfg.has(CleanupDelete) {
		return 0, nil
	}
	for _, s := range l.segments {
		if err := s.indexes(); err != nil {
			return 0, err
		}
	}
	n, err := l.expired(now)
	if err != nil {
		return 0, err
	}
	// And the segments a DeleteRecords left below the start, when a
	// compaction pass kept it from deleting them (AdvanceStart).
	n = max(n, l.segmentsBelowStart())
	if err := l.deleteOldest(n); err != nil {
		return 0, err
	}
	return n, nil
}

// expired counts the segments, from the oldest, that retention deletes: it
// stops at the first segment that neither limit condemns, and before the
// active segment. A negative retention.ms or retention.bytes is no limit.
func (l *Log) expired(now time.Time) (int, error) {
	//klab:lesson 01 begin (*Log).expired
	var size int64
	for _, s := range l.segments {
		size += s.size
	}
	oldest := now.Add(-l.cfg.Retention).UnixMilli()
	n := 0
	for ; n < len(l.segments)-1; n++ {
		s := l.segments[n]
		tooOld := l.cfg.Retention >= 0 && s.largestTimestamp() < oldest
		tooBig := l.cfg.RetentionBytes >= 0 && size-s.size >= l.cfg.RetentionBytes
		if !tooOld && !tooBig {
			break
		}
		size -= s.size
	}
	return n, nil
	//klab:lesson 01 stub
	// return 0, lessons.Todo("01", "(*Log).expired")
	//klab:lesson 01 end
}
