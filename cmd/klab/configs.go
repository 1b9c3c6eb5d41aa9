package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/admin"
)

const configsHelp = `klab configs --describe --entity-type topics|brokers [--entity-name N | --entity-default] [--all]
  the configs set on a topic or a broker (all topics, or every broker,
  without --entity-name); --all: every config, with where its value comes from.
klab configs --alter --entity-type topics|brokers (--entity-name N | --entity-default)
    [--add-config k=v[,k2=v2,k3=[a,b]]] [--delete-config k[,k2]]
  set configs, or delete them back to the default. A list value goes in
  square brackets: cleanup.policy=[compact,delete].
All take --bootstrap-server host:port (default 127.0.0.1:9092), as
kafka-configs.sh does.`

// configsTimeout bounds a configs command, retries included.
const configsTimeout = 15 * time.Second

// configsFlags are kafka-configs.sh's flags.
type configsFlags struct {
	bootstrap, entityType, entityName, addConfig, deleteConfig string
	describe, alter, entityDefault, all                        bool
}

// runConfigs is kafka-configs.sh: describe and alter the configs of topics
// and brokers.
func runConfigs(args []string) error {
	fs := flag.NewFlagSet("configs", flag.ContinueOnError)
	var f configsFlags
	fs.StringVar(&f.bootstrap, "bootstrap-server", "127.0.0.1:9092", "brokers to start from, host:port, comma-separated")
	fs.BoolVar(&f.describe, "describe", false, "print configs")
	fs.BoolVar(&f.alter, "alter", false, "change configs")
	fs.StringVar(&f.entityType, "entity-type", "", "topics or brokers")
	fs.StringVar(&f.entityName, "entity-name", "", "the topic's name or the broker's id")
	fs.BoolVar(&f.entityDefault, "entity-default", false, "the brokers' cluster-wide default")
	fs.BoolVar(&f.all, "all", false, "with --describe: every config, not only those set dynamically")
	fs.StringVar(&f.addConfig, "add-config", "", "configs to set, k=v,k2=v2 (a list value in [ ])")
	fs.StringVar(&f.deleteConfig, "delete-config", "", "configs to delete, k,k2")
	if len(args) == 0 {
		fmt.Println(configsHelp)
		return nil
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	typ, err := resourceType(f.entityType)
	if err != nil {
		return err
	}
	if f.entityDefault && typ != admin.BrokerResource {
		return errors.New("--entity-default is for --entity-type brokers")
	}
	adm := admin.New(admin.Options{Bootstrap: strings.Split(f.bootstrap, ",")})
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), configsTimeout)
	defer cancel()
	switch {
	case f.describe == f.alter:
		return errors.New("give one of --describe and --alter\n" + configsHelp)
	case f.describe:
		return describeConfigs(ctx, adm, typ, f)
	default:
		return alterConfigs(ctx, adm, typ, f)
	}
}

// resourceType reads --entity-type.
func resourceType(entityType string) (admin.ResourceType, error) {
	switch entityType {
	case "topics":
		return admin.TopicResource, nil
	case "brokers":
		return admin.BrokerResource, nil
	case "":
		return 0, errors.New("--entity-type is required: topics or brokers")
	}
	return 0, fmt.Errorf("--entity-type %s: klab has configs for topics and brokers", entityType)
}

// describeConfigs prints the configs of the entity, or of every topic or
// broker when none is named, as kafka-configs --describe does.
func describeConfigs(ctx context.Context, adm *admin.Client, typ admin.ResourceType, f configsFlags) error {
	resources, err := describedResources(ctx, adm, typ, f)
	if err != nil {
		return err
	}
	described, err := adm.DescribeConfigs(ctx, resources...)
	if err != nil {
		return err
	}
	for _, rc := range described {
		printConfigs(rc, f.all)
	}
	return nil
}

// describedResources are the resources --describe names: the entity, the
// brokers' default, or every topic or broker.
func describedResources(ctx context.Context, adm *admin.Client, typ admin.ResourceType, f configsFlags) ([]admin.ConfigResource, error) {
	switch {
	case f.entityDefault:
		return []admin.ConfigResource{{Type: typ}}, nil
	case f.entityName != "":
		return []admin.ConfigResource{{Type: typ, Name: f.entityName}}, nil
	case typ == admin.TopicResource:
		topics, err := adm.DescribeTopics(ctx)
		if err != nil {
			return nil, err
		}
		var out []admin.ConfigResource
		for _, t := range topics {
			out = append(out, admin.ConfigResource{Type: typ, Name: t.Name})
		}
		return out, nil
	default:
		cluster, err := adm.DescribeCluster(ctx)
		if err != nil {
			return nil, err
		}
		var out []admin.ConfigResource
		for _, b := range cluster.Brokers {
			out = append(out, admin.ConfigResource{Type: typ, Name: strconv.Itoa(int(b.ID))})
		}
		return out, nil
	}
}

// printConfigs prints one resource's configs as kafka-configs does:
//
//	Dynamic configs for topic orders are:
//	  retention.ms=60000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=60000, DEFAULT_CONFIG:retention.ms=604800000}
func printConfigs(rc admin.ResourceConfigs, all bool) {
	isDefault := rc.Resource.Type == admin.BrokerResource && rc.Resource.Name == ""
	switch {
	case isDefault && all:
		fmt.Println("All configs for brokers in the cluster are:")
	case isDefault:
		fmt.Println("Default configs for brokers in the cluster are:")
	case all:
		fmt.Printf("All configs for %s are:\n", rc.Resource)
	default:
		fmt.Printf("Dynamic configs for %s are:\n", rc.Resource)
	}
	configs := slices.Clone(rc.Configs)
	slices.SortFunc(configs, func(a, b admin.Config) int { return strings.Compare(a.Name, b.Name) })
	for _, c := range configs {
		if !all && c.Source != dynamicSource(rc.Resource) {
			continue
		}
		var synonyms []string
		for _, s := range c.Synonyms {
			synonyms = append(synonyms, fmt.Sprintf("%s:%s=%s", s.Source, s.Name, orNull(s.Value)))
		}
		fmt.Printf("  %s=%s sensitive=%t synonyms={%s}\n", c.Name, orNull(c.Value), c.Sensitive, strings.Join(synonyms, ", "))
	}
}

// dynamicSource is the source of a config set on the resource itself,
// which --describe without --all shows.
func dynamicSource(r admin.ConfigResource) admin.ConfigSource {
	switch {
	case r.Type == admin.TopicResource:
		return kmsg.ConfigSourceDynamicTopicConfig
	case r.Name == "":
		return kmsg.ConfigSourceDynamicDefaultBrokerConfig
	default:
		return kmsg.ConfigSourceDynamicBrokerConfig
	}
}

// orNull is a config value as Java prints it: null when there is none.
func orNull(v *string) string {
	if v == nil {
		return "null"
	}
	return *v
}

// alterConfigs sets and deletes configs of one entity, as kafka-configs
// --alter does, with IncrementalAlterConfigs.
func alterConfigs(ctx context.Context, adm *admin.Client, typ admin.ResourceType, f configsFlags) error {
	if f.entityName == "" && !f.entityDefault {
		return errors.New("--alter needs --entity-name or --entity-default")
	}
	r := admin.ConfigResource{Type: typ, Name: f.entityName}
	changes, err := configChanges(f.addConfig, f.deleteConfig)
	if err != nil {
		return err
	}
	if err := checkDeletable(ctx, adm, r, changes); err != nil {
		return err
	}
	if err := adm.IncrementalAlterConfigs(ctx, r, changes...); err != nil {
		return err
	}
	if f.entityDefault {
		fmt.Println("Completed updating default config for brokers in the cluster.")
	} else {
		fmt.Printf("Completed updating config for %s.\n", r)
	}
	return nil
}

// configChanges reads --add-config and --delete-config.
func configChanges(add, del string) ([]admin.ConfigChange, error) {
	var changes []admin.ConfigChange
	for _, kv := range splitConfigList(add) {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("--add-config: want name=value, got %q", kv)
		}
		value = strings.TrimSuffix(strings.TrimPrefix(value, "["), "]")
		changes = append(changes, admin.ConfigChange{Op: admin.SetConfig, Name: name, Value: value})
	}
	for _, name := range splitConfigList(del) {
		changes = append(changes, admin.ConfigChange{Op: admin.DeleteConfig, Name: name})
	}
	if len(changes) == 0 {
		return nil, errors.New("--alter needs --add-config or --delete-config")
	}
	return changes, nil
}

// splitConfigList splits k=v,k2=[a,b] at the commas outside square
// brackets.
func splitConfigList(s string) []string {
	var out []string
	depth, start := 0, 0
	for i, r := range s {
		switch r {
		case '[':
			depth++
		case ']':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// checkDeletable refuses to delete a config that is not set on the
// resource, as kafka-configs does: deleting it would change nothing, and
// the name is likely a typo.
func checkDeletable(ctx context.Context, adm *admin.Client, r admin.ConfigResource, changes []admin.ConfigChange) error {
	var deletes []string
	for _, ch := range changes {
		if ch.Op == admin.DeleteConfig {
			deletes = append(deletes, ch.Name)
		}
	}
	if len(deletes) == 0 {
		return nil
	}
	described, err := adm.DescribeConfigs(ctx, r)
	if err != nil {
		return err
	}
	set := map[string]bool{}
	for _, c := range described[0].Configs {
		set[c.Name] = c.Source == dynamicSource(r)
	}
	var invalid []string
	for _, name := range deletes {
		if !set[name] {
			invalid = append(invalid, name)
		}
	}
	if len(invalid) > 0 {
		return fmt.Errorf("invalid config(s): %s: not set on %s, so there is nothing to delete", strings.Join(invalid, ","), r)
	}
	return nil
}
