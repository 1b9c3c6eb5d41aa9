// Command klab is the one binary of the klab course: it runs the cluster,
// measures it, and drives the course (`klab course`).
//
//	klab cluster            run a local cluster of three brokers
//	klab topics create ...  manage topics, with kafka-topics' flag names
//	klab course             list the lessons and where you stand on each
//	klab course test NN     run lesson NN's exercise tests
//	klab perf log           measure the commit log against a plain file
//
// Run `klab help` for every command.
package main

import (
	"fmt"
	"os"
)

// command is one subcommand: its name, a line of help, and what it runs.
type command struct {
	name, usage, help string
	run               func(args []string) error
}

func commands() []command {
	return []command{
		{"cluster", "klab cluster [--brokers 3] [--racks a,b,c] [--dir klab-data] [--port 9092]", "run a local Kafka-compatible cluster, one process per broker", runCluster},
		{"broker", "klab broker --id N --listen host:port --gossip host:port --seeds a,b,c --dir D [--rack R] [--config F]", "run one broker", runBrokerCommand},
		// runBrokerCommand sends `klab broker stop` here; listed apart for the help.
		{"broker stop", "klab broker stop --id N [--dir klab-data] [--timeout 60s]", "stop a running broker cleanly, as kafka-server-stop.sh does", runBrokerStop},
		{"topics", "klab topics create|list|describe|delete [flags]", "create, list, describe and delete topics", runTopics},
		{"produce", "klab produce --topic T [--key-separator S] [-X k=v]", "write lines of standard input as records", runProduce},
		{"consume", "klab consume --topic T [--from-beginning] [flags]", "print records", runConsume},
		{"groups", "klab groups list|describe|delete|delete-offsets|reset-offsets [flags]", "list, describe and delete consumer groups; delete or reset their offsets", runGroups},
		{"streams", "klab streams describe --application-id A [--state-dir D]", "a streams application's members, tasks, lag and stores", runStreams},
		{"configs", "klab configs --describe|--alter --entity-type topics|brokers [--entity-name N | --entity-default] [flags]", "describe and alter topic and broker configs, as kafka-configs.sh does", runConfigs},
		{"log-dirs", "klab log-dirs --describe [--broker-list 1,2] [--topic-list a,b]", "each broker's log directories and partition sizes, as JSON", runLogDirs},
		{"delete-records", "klab delete-records --offset-json-file F", "delete the records before an offset, as kafka-delete-records.sh does", runDeleteRecords},
		{"leader-election", "klab leader-election --election-type preferred|unclean (--topic T --partition P | --all-topic-partitions | --path-to-json-file F)", "elect partition leaders", runLeaderElection},
		{"reassign", "klab reassign --generate|--execute|--verify|--cancel|--list [flags]", "move partitions' replicas, as kafka-reassign-partitions.sh does", runReassign},
		{"transactions", "klab transactions describe-producers --topic T --partition P", "a partition's idempotent producers and their last sequences", runTransactions},
		{"course", "klab course [test|solve|reset NN | gen | check]", "the course: progress, tests, solutions", runCourse},
		{"perf", "klab perf log|recovery|produce|consume|compare|clients|replicated|failover|streams [flags]", "measure the log, the cluster and the clients", runPerf},
	}
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "help" || os.Args[1] == "-h" || os.Args[1] == "--help" {
		usage()
		return
	}
	for _, c := range commands() {
		if c.name == os.Args[1] {
			if err := c.run(os.Args[2:]); err != nil {
				fmt.Fprintln(os.Stderr, "klab "+c.name+":", err)
				os.Exit(1)
			}
			return
		}
	}
	fmt.Fprintf(os.Stderr, "klab: unknown command %q\n\n", os.Args[1])
	usage()
	os.Exit(2)
}

func usage() {
	fmt.Println("klab: a Kafka-compatible cluster, and the course that builds it.\n\nCommands:")
	for _, c := range commands() {
		fmt.Printf("  %-50s %s\n", c.usage, c.help)
	}
}
