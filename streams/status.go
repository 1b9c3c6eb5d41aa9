package streams

import (
	"encoding/json"
	"os"
	"path/filepath"
	"time"
)

// StatusFile is the name of the file, in <state.dir>/<application.id>,
// where a running instance says what it is doing: its threads, their
// tasks, and how far each store's restore is. `klab streams describe
// --state-dir` reads it. Two instances sharing a state directory would
// overwrite each other's: give each its own, as Kafka requires anyway.
const StatusFile = "klab-streams.json"

// Status is what the status file holds.
type Status struct {
	ApplicationID string           `json:"application_id"`
	ClientID      string           `json:"client_id"`
	PID           int              `json:"pid"`
	State         string           `json:"state"`
	Error         string           `json:"error,omitempty"`
	Updated       time.Time        `json:"updated"`
	Threads       []ThreadMetadata `json:"threads"`
}

// ThreadMetadata describes one stream thread and its tasks, as Kafka's
// ThreadMetadata.
type ThreadMetadata struct {
	Name  string         `json:"name"`
	Tasks []TaskMetadata `json:"tasks"`
}

// TaskMetadata describes one active task: its id, the input partitions it
// reads ("topic-partition"), its stores, and how many records it dropped.
type TaskMetadata struct {
	ID         TaskID          `json:"id"`
	Partitions []string        `json:"partitions"`
	Stores     []StoreMetadata `json:"stores,omitempty"`
	// Dropped counts the records the task dropped, as Kafka's
	// dropped-records metric: those whose timestamp is before 1970 (an
	// invalid event time), counted at each commit.
	Dropped int64 `json:"dropped,omitempty"`
}

// The states of a store, in StoreMetadata.State.
const (
	// StoreRestoring: its changelog is being replayed into it.
	StoreRestoring = "restoring"
	// StoreRunning: restored (or with nothing to restore), in use.
	StoreRunning = "running"
	// StoreUnlogged: it has no changelog, so nothing to restore.
	StoreUnlogged = "unlogged"
)

// StoreMetadata says where a task's store stands.
type StoreMetadata struct {
	Name  string `json:"name"`
	State string `json:"state"`
	// Restored is how many changelog offsets the restore has gone
	// through, of Total (what it had to go through when it began, from
	// the checkpoint or the start of the changelog to its end).
	Restored int64 `json:"restored"`
	Total    int64 `json:"total"`
}

// ReadStatus reads the status file of application appID under stateDir.
func ReadStatus(stateDir, appID string) (Status, error) {
	var s Status
	b, err := os.ReadFile(filepath.Join(stateDir, appID, StatusFile))
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, errorf("%s: %w", filepath.Join(stateDir, appID, StatusFile), err)
	}
	return s, nil
}

// writeStatus replaces the status file in dir, through a temporary file
// and a rename, so a reader sees the old file or the new one.
func writeStatus(dir string, s Status) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, StatusFile+".tmp*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, StatusFile))
}
