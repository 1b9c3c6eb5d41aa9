package broker

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// A partition's folder is named topic-partition, but a topic's name is not
// who it is: a topic deleted and created again under the same name is
// another topic, with another id (KIP-516). A broker that was down
// meanwhile finds a folder of the old topic under the new one's name; were
// it to open it as the new topic's replica, it would serve the old
// topic's records, and, once in sync, could lead with them. So each
// folder holds the id of the topic it belongs to, in partition.metadata
// as Kafka writes it, and a folder whose id is not the topic's is deleted
// before the replica is opened.

// partitionMetadataFile is the file, in a partition's folder, that names
// its topic's id.
const partitionMetadataFile = "partition.metadata"

// topicIDIn reads the topic id a partition folder belongs to; ok is false
// when it has none (a folder written before klab kept ids, or none yet).
func topicIDIn(dir string) (id [16]byte, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, partitionMetadataFile))
	if errors.Is(err, os.ErrNotExist) {
		return id, false, nil
	}
	if err != nil {
		return id, false, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, found := strings.CutPrefix(line, "topic_id: "); found {
			raw, err := base64.RawURLEncoding.DecodeString(strings.TrimSpace(v))
			if err != nil || len(raw) != len(id) {
				return id, false, fmt.Errorf("%s: a topic id that does not read: %q", partitionMetadataFile, v)
			}
			copy(id[:], raw)
			return id, true, nil
		}
	}
	return id, false, fmt.Errorf("%s: no topic_id line", partitionMetadataFile)
}

// writeTopicID records, atomically, the topic id a partition folder
// belongs to.
func writeTopicID(dir string, id [16]byte) error {
	text := "version: 0\ntopic_id: " + base64.RawURLEncoding.EncodeToString(id[:]) + "\n"
	tmp := filepath.Join(dir, partitionMetadataFile+".tmp")
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, partitionMetadataFile))
}

// belongsTo reports whether the partition folder dir is a replica of the
// topic with the given id, or may be taken for one: a folder without an id
// is adopted (it predates ids, or the broker stopped before writing it).
func belongsTo(dir string, id [16]byte) bool {
	have, ok, err := topicIDIn(dir)
	return err == nil && (!ok || have == id)
}
