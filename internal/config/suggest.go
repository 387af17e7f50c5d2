package config

import (
	"fmt"
	"sort"
	"strings"
)

// suggest names the known key nearest to an unknown one when it is close
// enough to be a typo, else the keys known at that level.
func suggest(key string, schema map[string]slot) string {
	return suggestAmong(key, sortedKeys(schema))
}

func suggestAmong(key string, known []string) string {
	best, dist := "", 1<<30
	for _, k := range known {
		if d := editDistance(key, k); d < dist {
			best, dist = k, d
		}
	}
	if best != "" && dist <= max(2, len(lastPart(key))/3) {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	parent := key[:max(0, strings.LastIndexByte(key, '.'))]
	var siblings []string
	for _, k := range known {
		rest, ok := strings.CutPrefix(k, parent+".")
		if parent == "" {
			rest, ok = k, true
		}
		if ok {
			first, _, _ := strings.Cut(rest, ".")
			if len(siblings) == 0 || siblings[len(siblings)-1] != first {
				siblings = append(siblings, first)
			}
		}
	}
	sort.Strings(siblings)
	siblings = compact(siblings)
	if len(siblings) == 0 {
		return ""
	}
	where := "at the top level"
	if parent != "" {
		where = "under " + parent
	}
	return fmt.Sprintf(" (keys %s: %s)", where, strings.Join(siblings, ", "))
}

func lastPart(key string) string { return key[strings.LastIndexByte(key, '.')+1:] }

func compact(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
