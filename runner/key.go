package runner

import (
	"bufio"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/lifeos/lifeos/internal/pathglob"
)

// The cache key of an element is made here and nowhere else, after
// cmd/go's buildActionID: one labelled line per input, in this order.
//
//	kind <uses>                        the step type
//	stepversion <n>                    bumped when the same params give another result
//	param <with.path> <json>           every resolved parameter (secrets as placeholders)
//	item <json>                        the foreach element
//	items <digest>                     the needs' items, for steps that take them
//	policy <path> <json>               policy values the step reads (Deps.Policy)
//	policy <path> <json>               policy values its per-item expressions read
//	upstream <step> <outputs>          needs' results its expressions or Deps.Upstream read
//	params <name> <json>               params its per-item expressions read
//	file <path> <sha256>               every file of Deps.Reads
//
// Not in the key: descriptions, retries, timeouts, gates and `when` (they
// decide whether a result is used, not what it is), and secrets.
//
// Some lines are the same for every element of a step: those are made once
// per step (stepKey), and the memo fingerprint, which lets a no-op run skip
// making keys at all, is derived from them.

// stepKey holds the key lines every element of a step shares.
type stepKey struct {
	head       [][]string // kind, stepversion
	items      [][]string // items, for steps that take them
	predicates [][]string // what the step's per-item expressions read
}

// newStepKey makes the shared lines of n's key, once its needs are done.
func (e *engine) newStepKey(n *node) *stepKey {
	s := n.s
	k := &stepKey{head: [][]string{{"kind", s.Uses}, {"stepversion", strconv.Itoa(s.Type.Version)}}}
	if s.readsItems {
		// What the items derive from (itemsIdentity), not their digest.
		ids := make([]string, len(n.deps))
		for i, d := range n.deps {
			ids[i] = d.itemsID
		}
		k.items = [][]string{{"items", strings.Join(ids, ",")}}
	}
	names := make([]string, 0, len(s.predicates))
	for name := range s.predicates {
		names = append(names, name)
	}
	sort.Strings(names) // a map's order would make keys differ run to run
	for _, name := range names {
		p := s.predicates[name]
		for _, path := range p.expr.policy {
			k.predicates = append(k.predicates, []string{"policy", path, e.policyJSON(path)})
		}
		for _, id := range p.expr.refs {
			k.predicates = append(k.predicates, []string{"upstream", id, e.outputIDs(e.byStep[e.plan.byID[id]])})
		}
		if len(e.plan.Params) > 0 && strings.Contains(p.expr.Src, "params") {
			b, _ := json.Marshal(e.plan.redact.Params(e.plan.Params))
			k.predicates = append(k.predicates, []string{"params", name, string(b)})
		}
	}
	return k
}

// outputIDs lists the output ids of a step's elements, comma-separated.
func (e *engine) outputIDs(d *node) string {
	outs := make([]string, len(d.elems))
	for i, x := range d.elems {
		outs[i] = x.output.String()
	}
	return strings.Join(outs, ",")
}

// actionKey writes every line of el's key (its params resolved into
// resolved, its Deps known) and records the stats of the files it read,
// for the memo.
func (e *engine) actionKey(el *element, resolved any) (*Hash, error) {
	s, sk := el.n.s, el.n.key
	var debug = e.o.Stderr
	if !e.debug["cachehash"] {
		debug = nil
	}
	name := s.ID
	if el.foreach {
		name += "[" + strconv.Itoa(el.index) + "]"
	}
	h := NewHash(name, debug)
	addAll := func(lines [][]string) {
		for _, l := range lines {
			h.Add(l...)
		}
	}
	addAll(sk.head)
	var ferr error
	flatten("with", resolved, func(path string, v any) {
		b, err := jsonText(v)
		if err != nil {
			ferr = fmt.Errorf("%s: with: %s: %w", s.withPos, path, err)
		}
		// Secrets stay out of keys: a new token makes the same image.
		h.Add("param", path, e.plan.redact.String(string(b)))
	})
	if ferr != nil {
		return nil, ferr
	}
	if el.foreach {
		b, err := jsonText(el.item)
		if err != nil {
			return nil, fmt.Errorf("foreach item %d: %w", el.index, err)
		}
		h.Add("item", string(b))
	}
	addAll(sk.items)
	for _, sec := range el.deps.Policy {
		h.Add("policy", sec, e.policyJSON(sec))
	}
	addAll(sk.predicates)
	if el.deps.Upstream {
		for _, d := range el.n.deps {
			h.Add("upstream", d.s.ID, e.outputIDs(d))
		}
	}
	if len(el.deps.Reads) == 0 {
		return h, nil
	}
	// A file in the workspace: hashed through the stat cache, its stamp
	// kept for the memo.
	file := func(rel string, d fs.DirEntry) error {
		st, err := e.stampOfEntry(rel, d)
		if err != nil {
			return fmt.Errorf("hash input: %w", err)
		}
		el.inputs = append(el.inputs, st)
		sum, _, err := e.stat.SumStamp(pathglob.Abs(e.plan.Root, rel), st.size, st.mtime, st.ino)
		if err != nil {
			return fmt.Errorf("hash input: %w", err)
		}
		h.Add("file", rel, sum.String())
		return nil
	}
	if e.left.active() {
		// Some results' files are not written (left.go): those the
		// patterns match are hashed as their results say they are, and
		// the stamps of the rest make no memo.
		el.memoOK = false
		files, err := e.walkLeft(el.deps.Reads)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			if f.left {
				h.Add("file", f.rel, f.sum.String())
			} else if err := file(f.rel, f.d); err != nil {
				return nil, err
			}
		}
	} else {
		el.inDir = e.listedDir(el.deps.Reads) // before it is listed
		byFolder, err := pathglob.WalkListed(e.plan.Root, el.deps.Reads, file)
		if err != nil {
			return nil, err
		}
		if !byFolder {
			el.inDir = stamp{} // a folder inside, or a link: listed every time
		}
	}
	return h, nil
}

// memoFingerprint digests everything an element's key derives from apart
// from its params, item and files: the step's shared key lines, and what
// its templates and when may read to resolve its params (the params, the
// policy, and the results of the steps it refers to or needs). It returns
// false when the step cannot use memos.
func (e *engine) memoFingerprint(n *node) ([16]byte, bool) {
	var fp [16]byte
	s := n.s
	if e.cache == nil || !s.Cache || !s.memoable() || e.o.NoDownload {
		// Without the download, the workspace's files are not the run's
		// (left.go): every element is found by its key.
		return fp, false
	}
	h := sha256.New()
	h.Write([]byte("memo-v2\n"))
	for _, part := range [][][]string{n.key.head, n.key.items, n.key.predicates} {
		for _, l := range part {
			fmt.Fprintln(h, strings.Join(l, " "))
		}
	}

	fmt.Fprintf(h, "with %s\n", s.withSource())
	if s.When != nil {
		fmt.Fprintf(h, "when %q\n", s.When.Src)
	}
	params, _ := json.Marshal(e.plan.redact.Params(e.plan.Params))
	fmt.Fprintf(h, "params %s\n", params)
	// The policy values the step's expressions read, not the whole policy:
	// a threshold edit must not send a thousand unrelated elements down the
	// full path. What the step itself reads (Deps.Policy) is in the memo.
	var paths []string
	for _, x := range s.exprs() {
		paths = append(paths, x.policy...)
	}
	slices.Sort(paths)
	h.Write([]byte(e.policyLines(slices.Compact(paths))))
	ids := append([]string{}, s.refs...)
	for _, d := range n.deps {
		ids = append(ids, d.s.ID)
	}
	// Written raw, through a small buffer: a filter over 1,000 images
	// hashes 1,000 results here, and a buffer grown to hold them all would
	// be 100 KB of fresh heap pages, each a page fault.
	bw := bufio.NewWriterSize(h, 4096)
	for _, id := range ids {
		d := e.byStep[e.plan.byID[id]]
		bw.WriteString("step " + id + " " + d.status)
		for _, el := range d.elems {
			bw.WriteByte(' ')
			bw.WriteString(el.status)
			bw.WriteByte(':')
			bw.Write(el.output[:])
		}
		bw.WriteByte('\n')
	}
	bw.Flush() // a hash's Write never fails
	copy(fp[:], h.Sum(nil))
	return fp, true
}

// policyLines are "<path>=<JSON value>" lines of the policy values at
// paths ("" is the whole policy).
func (e *engine) policyLines(paths []string) string {
	var b strings.Builder
	for _, p := range paths {
		b.WriteString(p)
		b.WriteByte('=')
		b.WriteString(e.policyJSON(p))
		b.WriteByte('\n')
	}
	return b.String()
}

// policyJSON is the JSON of the policy value at path, "" being the whole
// policy (an expression that reads policy[x]); once per path and run, as
// every element of a step asks for the same ones.
func (e *engine) policyJSON(path string) string {
	e.policyMu.Lock()
	defer e.policyMu.Unlock()
	if j, ok := e.policyJS[path]; ok {
		return j
	}
	var v any = e.policy
	if path != "" {
		v, _ = e.plan.Policy.Get(path)
	}
	b, _ := jsonText(v)
	if e.policyJS == nil {
		e.policyJS = map[string]string{}
	}
	e.policyJS[path] = string(b)
	return string(b)
}

// memoKey is the element's memo key: the step's fingerprint and its item.
func memoKey(fp [16]byte, el *element) [16]byte {
	var stack [256]byte
	b := append(stack[:0], fp[:]...)
	b = strconv.AppendInt(b, int64(el.index), 10)
	b = append(b, ' ')
	if s, ok := el.item.(string); ok && plainJSON(s) {
		b = append(append(append(b, '"'), s...), '"') // what json.Marshal gives
	} else {
		item, _ := json.Marshal(el.item)
		b = append(b, item...)
	}
	sum := sha256.Sum256(b)
	return [16]byte(sum[:16])
}

// plainJSON reports whether json.Marshal would quote s as it is: printable
// ASCII without the characters it escapes.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}
