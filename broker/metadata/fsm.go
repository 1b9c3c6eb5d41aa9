package metadata

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/raft"
)

// FSM applies the metadata log to an Image. It is the raft.FSM of the
// metadata quorum, and the only writer of the cluster's metadata.
type FSM struct {
	mu      sync.Mutex
	image   *Image
	changed chan struct{}
}

// NewFSM returns an FSM at the empty image.
func NewFSM() *FSM { return &FSM{image: Empty(), changed: make(chan struct{})} }

// Image is the metadata as of the last applied record. It must not be modified.
func (f *FSM) Image() *Image {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.image
}

// Changed returns a channel closed at the next change of the image.
func (f *FSM) Changed() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

func (f *FSM) publish(im *Image) {
	f.mu.Lock()
	f.image = im
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

// Encode turns a record into a log entry's data.
func Encode(r Record) ([]byte, error) { return json.Marshal(r) }

// Apply applies one committed log entry. Its result, what raft's
// ApplyFuture.Response returns on the controller, is nil or the error
// that kept the record from applying.
func (f *FSM) Apply(l *raft.Log) any {
	var r Record
	if err := json.Unmarshal(l.Data, &r); err != nil {
		return fmt.Errorf("metadata: undecodable record at %d: %w", l.Index, err)
	}
	cur := f.Image()
	next, err := cur.apply(r)
	if err != nil {
		// A refused record changes nothing but still moves the offset.
		next = cur.clone()
	}
	next.Offset = l.Index
	f.publish(next)
	return err
}

// Snapshot captures the image for raft to write out. Images are never
// modified, so holding the pointer is enough.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) { return snapshot{f.Image()}, nil }

// Restore replaces the image with a snapshot's.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	im := Empty()
	if err := json.NewDecoder(rc).Decode(im); err != nil {
		return fmt.Errorf("metadata: restoring snapshot: %w", err)
	}
	f.publish(im)
	return nil
}

type snapshot struct{ image *Image }

func (s snapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(s.image); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s snapshot) Release() {}
