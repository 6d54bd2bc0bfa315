package cli

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/anycheck/anycheck/internal/report"
)

// warnFirst is how many results of one input a kind of warning is said for
// on stderr; the rest are counted and said once when the input is read.
const warnFirst = 3

// resultWarnings groups what is said about the results of an input by
// kind: the first warnFirst results with a kind are named on stderr, the
// others are counted and said once ("and 9996 more results: …"), so a
// large bad file stays readable. The document keeps every warning.
type resultWarnings struct {
	out    *runOutput
	counts map[[2]string]int // (input, kind) → results
	order  [][2]string
	// this result's kinds, and whether they were said: a result with one
	// kind twice (two hops) counts once and is said whole or not at all.
	current map[string]bool
}

// result starts the warnings of the next result.
func (w *resultWarnings) result() { clear(w.current) }

// add records p, a warning of kind about the current result of input,
// and says it unless warnFirst results of that kind were said before.
func (w *resultWarnings) add(out *runOutput, input, kind string, p report.Problem) {
	w.out = out
	if w.counts == nil {
		w.counts = map[[2]string]int{}
		w.current = map[string]bool{}
	}
	said, seen := w.current[kind]
	if !seen {
		k := [2]string{input, kind}
		if w.counts[k] == 0 {
			w.order = append(w.order, k)
		}
		w.counts[k]++
		said = w.counts[k] <= warnFirst
		w.current[kind] = said
	}
	if said {
		out.problem(p)
	} else {
		out.problemUnsaid(p)
	}
}

// flush says, for each kind of warning of input ("": of every input), how
// many more results had it than were named, and forgets the input.
func (w *resultWarnings) flush(input string) {
	kept := w.order[:0]
	for _, k := range w.order {
		if input != "" && k[0] != input {
			kept = append(kept, k)
			continue
		}
		if n := w.counts[k] - warnFirst; n > 0 {
			more := "1 more result"
			if n > 1 {
				more = strconv.Itoa(n) + " more results"
			}
			w.out.warn(fmt.Sprintf("%s: and %s: %s", k[0], more, k[1]))
		}
		delete(w.counts, k)
	}
	w.order = kept
	clear(w.current)
}

// A number standing alone in a warning: the values of one kind of warning
// differ from result to result ("hop 7: reply TTL 300 out of 0…255"); the
// bounds of a range ("0…255") and ordinals ("255th") are part of the kind.
var warningNumber = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(^|[ ])-?[0-9]+($|[ :,;])`)
})

// warningKind is what a warning says without its values: numbers standing
// alone become N ("hop N: reply TTL N out of 0…255: left out").
func warningKind(w string) string {
	for {
		k := warningNumber().ReplaceAllString(w, "${1}N$2")
		if k == w {
			return strings.TrimSpace(k)
		}
		w = k
	}
}

// cutResultIndex splits an observation's input "FILE#INDEX" into the file
// and the index; ok is false (and input the whole) when it has none.
func cutResultIndex(s string) (input string, index int, ok bool) {
	i := strings.LastIndexByte(s, '#')
	if i < 0 {
		return s, 0, false
	}
	n, err := strconv.Atoi(s[i+1:])
	if err != nil {
		return s, 0, false
	}
	return s[:i], n, true
}
