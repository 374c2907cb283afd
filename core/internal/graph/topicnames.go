package graph

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// MaxTopicNameLength is the longest topic name Kafka accepts.
const MaxTopicNameLength = 249

// CheckTopicName reports why Kafka would refuse name as a topic name, or
// nil: Kafka accepts names of 1 to 249 characters among ASCII letters,
// digits, '.', '_' and '-', other than "." and "..".
func CheckTopicName(name string) error {
	if p := topicNameProblem(name); p != "" {
		return fmt.Errorf("topic name %q: %s", name, p)
	}
	return nil
}

// topicNameProblem says what Kafka refuses in name, or "".
func topicNameProblem(name string) string {
	switch {
	case name == "":
		return "empty"
	case name == "." || name == "..":
		return "Kafka refuses \".\" and \"..\""
	case len(name) > MaxTopicNameLength:
		return fmt.Sprintf("%d characters long; Kafka allows at most %d", len(name), MaxTopicNameLength)
	}
	if i := strings.IndexFunc(name, func(c rune) bool { return !legalTopicRune(c) }); i >= 0 {
		return fmt.Sprintf("contains %q (at byte %d); Kafka allows only ASCII letters, digits, '.', '_' and '-'", []rune(name[i:])[0], i)
	}
	return ""
}

func legalTopicRune(c rune) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-'
}

// CheckAppID reports an application id that Kafka would refuse in a topic
// name the application creates for t. The id prefixes the changelog topics
// ("<id>-<store>-changelog"), so it must use only the characters of topic
// names whether or not t has changelogs today (a store added later would
// otherwise make the deployed id unusable); and every internal topic,
// including the longest changelog, must be at most 249 characters. The
// error names the id and the offending topic.
func CheckAppID(appID string, t *Topology) error {
	if appID == "" {
		return fmt.Errorf("empty application id")
	}
	if p := topicNameProblem(appID); p != "" {
		return fmt.Errorf("application id %q cannot prefix Kafka topic names: %s", appID, p)
	}
	if t == nil {
		return nil
	}
	for _, s := range t.Stores {
		if !s.Logged() {
			continue
		}
		if topic := ChangelogTopic(appID, s.Name()); topicNameProblem(topic) != "" {
			return fmt.Errorf("application id %q: Kafka would refuse the changelog topic %q of store %q: %s",
				appID, topic, s.Name(), topicNameProblem(topic))
		}
	}
	managed := slices.Sorted(maps.Keys(t.ManagedTopics))
	for _, topic := range managed {
		if p := topicNameProblem(topic); p != "" {
			return fmt.Errorf("Kafka would refuse the repartition topic %q: %s", topic, p)
		}
	}
	return nil
}
