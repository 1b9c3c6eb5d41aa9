package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"klab.dev/klab/admin"
)

// logDirsReport is kafka-log-dirs.sh's JSON.
type logDirsReport struct {
	Version int                 `json:"version"`
	Brokers []logDirsReportNode `json:"brokers"`
}

type logDirsReportNode struct {
	Broker  int32              `json:"broker"`
	LogDirs []logDirsReportDir `json:"logDirs"`
}

type logDirsReportDir struct {
	LogDir     string                   `json:"logDir"`
	Error      *string                  `json:"error"` // null when the directory is healthy
	Partitions []logDirsReportPartition `json:"partitions"`
}

type logDirsReportPartition struct {
	Partition string `json:"partition"` // topic-N
	Size      int64  `json:"size"`
	OffsetLag int64  `json:"offsetLag"`
	IsFuture  bool   `json:"isFuture"`
}

// runLogDirs is kafka-log-dirs.sh --describe: each broker's log
// directories and the size and lag of each partition replica in them, as
// one line of JSON.
func runLogDirs(args []string) error {
	fs := flag.NewFlagSet("log-dirs", flag.ContinueOnError)
	bootstrap := fs.String("bootstrap-server", "127.0.0.1:9092", "brokers to start from, host:port, comma-separated")
	describe := fs.Bool("describe", false, "describe the log directories (the only action)")
	brokerList := fs.String("broker-list", "", "brokers to describe, 1,2,3 (default: every broker)")
	topicList := fs.String("topic-list", "", "topics to show, a,b (default: every topic)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !*describe {
		return errors.New("--describe is required: it is the only action of log-dirs")
	}
	brokers, err := parseBrokerList(*brokerList)
	if err != nil {
		return err
	}
	adm := admin.New(admin.Options{Bootstrap: strings.Split(*bootstrap, ",")})
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), configsTimeout)
	defer cancel()
	fmt.Println("Querying brokers for log directories information")
	dirs, err := adm.DescribeLogDirs(ctx, brokers...)
	if err != nil {
		return err
	}
	report := logDirsReportOf(dirs, splitList(*topicList))
	var ids []string
	for _, b := range report.Brokers {
		ids = append(ids, strconv.Itoa(int(b.Broker)))
	}
	fmt.Printf("Received log directory information from brokers %s\n", strings.Join(ids, ","))
	out, err := json.Marshal(report)
	if err != nil {
		return err
	}
	fmt.Println(string(out))
	return nil
}

// logDirsReportOf builds the report, keeping only the topics asked for
// (all when topics is empty).
func logDirsReportOf(dirs []admin.LogDir, topics []string) logDirsReport {
	report := logDirsReport{Version: 1, Brokers: []logDirsReportNode{}}
	index := map[int32]int{}
	for _, d := range dirs {
		i, ok := index[d.Broker]
		if !ok {
			i = len(report.Brokers)
			index[d.Broker] = i
			report.Brokers = append(report.Brokers, logDirsReportNode{Broker: d.Broker, LogDirs: []logDirsReportDir{}})
		}
		rd := logDirsReportDir{LogDir: d.Dir, Partitions: []logDirsReportPartition{}}
		if d.Err != nil {
			msg := d.Err.Error()
			rd.Error = &msg
		}
		for _, p := range d.Partitions {
			if len(topics) > 0 && !slices.Contains(topics, p.Topic) {
				continue
			}
			rd.Partitions = append(rd.Partitions, logDirsReportPartition{Partition: p.String(), Size: p.Size, OffsetLag: p.OffsetLag, IsFuture: p.IsFuture})
		}
		report.Brokers[i].LogDirs = append(report.Brokers[i].LogDirs, rd)
	}
	return report
}

// parseBrokerList reads a comma-separated list of broker ids; empty is
// none.
func parseBrokerList(s string) ([]int32, error) {
	var ids []int32
	for _, f := range splitList(s) {
		id, err := strconv.ParseInt(f, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%q is not a broker id", f)
		}
		ids = append(ids, int32(id))
	}
	return ids, nil
}

// splitList splits a comma-separated flag, dropping spaces and empty
// items.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
