package runner

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/lifeos/lifeos/internal/atomicfile"
	"github.com/lifeos/lifeos/internal/robustio"
	"github.com/lifeos/lifeos/runner/cache"
)

// Step and run statuses, as written in run records.
const (
	StatusOK        = "ok"
	StatusCached    = "cached"
	StatusSkipped   = "skipped"
	StatusFailed    = "failed"
	StatusBlocked   = "blocked" // a gate was false
	StatusCancelled = "cancelled"
	StatusRun       = "run" // plan only: would run
)

// Record is the run record, .lifeos/runs/<id>/run.json.
type Record struct {
	ID             string         `json:"id"`
	Pipeline       string         `json:"pipeline"`
	Name           string         `json:"name,omitempty"`
	PipelineDigest string         `json:"pipeline_digest"`
	Policy         string         `json:"policy,omitempty"`
	PolicyDigest   string         `json:"policy_digest"`
	Params         map[string]any `json:"params,omitempty"`
	Started        time.Time      `json:"started"`
	Finished       time.Time      `json:"finished"`
	DurationMS     float64        `json:"duration_ms"`
	Status         string         `json:"status"`
	Error          string         `json:"error,omitempty"`
	Cost           float64        `json:"cost,omitempty"` // sum of the steps' costs
	Steps          []*StepRecord  `json:"steps"`

	redact  *redactor // what may not be recorded (secrets)
	written *Record   // the record as run.json holds it (compact)
}

// WriteJSON writes the record as indented JSON, secrets redacted: as
// run.json holds it, once it is written.
func (r *Record) WriteJSON(w io.Writer) error {
	if r.written != nil {
		r = r.written
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return err
	}
	_, err := w.Write(r.redact.JSON(b.Bytes()))
	return err
}

// StepRecord is one step of a run record.
type StepRecord struct {
	ID     string `json:"id"`
	Uses   string `json:"uses"`
	Status string `json:"status"`
	Cached bool   `json:"cached"`
	// UpToDate says a cached step's outputs were already in place on disk:
	// nothing ran and nothing was restored.
	UpToDate   bool    `json:"up_to_date,omitempty"`
	Reason     string  `json:"reason,omitempty"`
	DurationMS float64 `json:"duration_ms"`
	Attempts   int     `json:"attempts,omitempty"`
	Action     string  `json:"action,omitempty"`
	Output     string  `json:"output,omitempty"`
	Outputs    any     `json:"outputs,omitempty"`
	// OutputsObject, when set, is the cache object holding the step's
	// complete outputs (JSON), too large for the record: Outputs then keeps
	// only the small ones (summary, counts). runner.StepOutputs reads it.
	OutputsObject string      `json:"outputs_object,omitempty"`
	When          *Evaluation `json:"when,omitempty"`
	Gate          *Evaluation `json:"gate,omitempty"`
	// Iterations and Until are a repeat step's: how many ran, and its
	// until on the last one.
	Iterations int         `json:"iterations,omitempty"`
	Until      *Evaluation `json:"until,omitempty"`
	Error      string      `json:"error,omitempty"`
	Log        string      `json:"log,omitempty"`
	Failed     string      `json:"failed_work,omitempty"` // where a failed step's outputs were moved
	Cost       *StepCost   `json:"cost,omitempty"`
	// Total is how many elements a foreach step has.
	Total int `json:"total,omitempty"`
	// Worker names the machine a step carried out elsewhere ran on.
	Worker   string           `json:"worker,omitempty"`
	Counts   map[string]int   `json:"counts,omitempty"`
	Elements []*ElementRecord `json:"elements,omitempty"`
	// ElementsObject, when set, is the cache object holding every element
	// record (JSON) when there were too many for the record: Elements then
	// keeps the first failed ones, then the first others.
	ElementsObject string `json:"elements_object,omitempty"`

	outputsJSON []byte   // Outputs as JSON, when the engine has it at hand
	appends     []Append // the lines it appended to workspace files
	// entries are the bundles of its elements' cache entries
	// (Outcome.Entries), on a machine that shares them.
	entries []cache.OutputID
}

// StepCost is what a costed step's running time cost.
type StepCost struct {
	Activity string  `json:"activity"`
	Seconds  float64 `json:"seconds"`
	Rate     float64 `json:"rate_per_hour"`
	Cost     float64 `json:"cost"`
}

// ElementRecord is one element of a foreach step that did not come from
// the cache (it ran, failed, was skipped or cancelled): a re-run of a
// thousand cached images records counts, not a thousand entries. Its
// outputs are in the step's outputs list, at the same index.
type ElementRecord struct {
	Index      int     `json:"index"`
	Item       any     `json:"item"`
	Status     string  `json:"status"`
	Reason     string  `json:"reason,omitempty"`
	DurationMS float64 `json:"duration_ms,omitempty"`
	Output     string  `json:"output,omitempty"`
	Error      string  `json:"error,omitempty"`
	Log        string  `json:"log,omitempty"`
	Failed     string  `json:"failed_work,omitempty"`
}

// Evaluation is a when or gate expression with its result and operands.
type Evaluation struct {
	Expr  string `json:"expr"`
	Value bool   `json:"value"`
	Terms []Term `json:"terms,omitempty"`
}

// newRunID returns a sortable, unique run id: UTC time plus randomness.
// NewRunID returns a new run id, as a run started now would have.
func NewRunID() string { return newRunID(time.Now()) }

func newRunID(t time.Time) string {
	var b [3]byte
	rand.Read(b[:])
	return t.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
}

// RunsDir is where run records live in a workspace.
func RunsDir(root string) string { return filepath.Join(root, ".lifeos", "runs") }

// tmpDir is where run records are written before their rename: inside
// the runs folder, so on its file system, and small.
func tmpDir(root string) string { return filepath.Join(RunsDir(root), ".tmp") }

// write stores the record atomically in f, made by Run: the run's fields
// indented, then one step per line. Indenting every field of 10,000 steps
// cost more than scheduling them; a line per step stays readable and
// greppable. The temporary file is in .lifeos/runs/.tmp (tmpDir), so that a
// killed run's leftover is found by reading that small folder, not the runs
// folder (hundreds of records) or every record's folder.
func (r *Record) write(f *atomicfile.Pending, sync bool) error {
	return f.Commit(func(w io.Writer) error {
		head := *r
		head.Steps = nil
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false) // keep "a > b" readable in gate expressions
		if err := enc.Encode(&head); err != nil {
			return fmt.Errorf("encode run record: %w", err)
		}
		// Replace `"steps": null` with the steps, one per line.
		out := bytes.TrimSuffix(b.Bytes(), []byte("\n}\n"))
		out = bytes.TrimSuffix(out, []byte(`"steps": null`))
		line := json.NewEncoder(bufferWriter{&out})
		line.SetEscapeHTML(false)
		out = append(out, `"steps": [`...)
		for i, s := range r.Steps {
			if i > 0 {
				out = append(out, ',')
			}
			out = append(out, "\n    "...)
			if err := line.Encode(s); err != nil {
				return fmt.Errorf("encode run record: %w", err)
			}
			out = bytes.TrimSuffix(out, []byte("\n"))
		}
		out = append(out, "\n  ]\n}\n"...)
		_, err := w.Write(r.redact.JSON(out))
		return err
	}, sync)
}

// The limits that keep a run record small whatever the batch size: per-item
// detail lives once, in the cache, and the record refers to it by digest.
const (
	recordOutputsMax  = 16 << 10 // bytes of a step's outputs, as JSON
	recordOutputMax   = 1 << 10  // bytes of one output kept beside a reference
	recordElementsMax = 100      // element records
)

// compact returns the record as it is written: a step's outputs or element
// records beyond the limits above are stored through put (a cache object,
// redacted like the record) and referred to by their digest. Without put
// (no cache), or when put fails, they stay in the record: a large record
// is better than a lost one.
func (r *Record) compact(put func([]byte) (string, error)) *Record {
	if put == nil {
		return r
	}
	store := func(data []byte) string {
		id, err := put(r.redact.JSON(data))
		if err != nil {
			return ""
		}
		return id
	}
	out := *r
	out.Steps = make([]*StepRecord, len(r.Steps))
	for i, s := range r.Steps {
		cs := *s
		out.Steps[i] = &cs
		if so, ok := s.Outputs.(*storedOutputs); ok {
			// Already an object, free of secrets (recordMemo): kept as used.
			so.c.Touch(so.ref)
			cs.Outputs, cs.OutputsObject = so.head, so.ref.String()
		} else if s.Outputs != nil {
			data, err := s.outputsJSON, error(nil)
			if data == nil {
				data, err = jsonText(s.Outputs)
			}
			if err == nil && len(data) > recordOutputsMax {
				if cs.OutputsObject = store(data); cs.OutputsObject != "" {
					cs.Outputs = smallOutputs(s.Outputs)
				}
			}
		}
		if len(s.Elements) > recordElementsMax {
			if data, err := jsonText(s.Elements); err == nil {
				if cs.ElementsObject = store(data); cs.ElementsObject != "" {
					cs.Elements = someElements(s.Elements, recordElementsMax)
				}
			}
		}
	}
	return &out
}

// smallOutputs is what stays in the record of outputs too large for it:
// the named outputs whose JSON is small.
func smallOutputs(outputs any) any {
	if so, ok := outputs.(*storedOutputs); ok {
		return so.head
	}
	m, ok := outputs.(map[string]any)
	if !ok {
		return nil
	}
	small := map[string]any{}
	for k, v := range m {
		switch x := v.(type) {
		case []any:
			if len(x) > recordOutputMax/2 {
				continue // too large, without encoding it to see
			}
		case map[string]any:
			if len(x) > recordOutputMax/2 {
				continue
			}
		}
		if b, err := jsonText(v); err == nil && len(b) <= recordOutputMax {
			small[k] = v
		}
	}
	return small
}

// someElements keeps n element records, the failed ones first, in index
// order.
func someElements(els []*ElementRecord, n int) []*ElementRecord {
	kept := make([]*ElementRecord, 0, n)
	for _, pass := range []bool{true, false} {
		for _, el := range els {
			if len(kept) < n && (el.Status == StatusFailed) == pass {
				kept = append(kept, el)
			}
		}
	}
	slices.SortFunc(kept, func(a, b *ElementRecord) int { return a.Index - b.Index })
	return kept
}

// StepDetail returns the complete outputs and element records of step id
// in the run record r of the workspace at root: from the record, or from
// the cache objects it refers to when they were too large for it. An
// object the cache no longer holds (trimmed) is an error that says so.
func StepDetail(root string, r *Record, id string) (outputs any, elements []*ElementRecord, err error) {
	var s *StepRecord
	for _, x := range r.Steps {
		if x.ID == id {
			s = x
		}
	}
	if s == nil {
		return nil, nil, fmt.Errorf("run %s has no step %q", r.ID, id)
	}
	outputs, elements = s.Outputs, s.Elements
	if s.OutputsObject == "" && s.ElementsObject == "" {
		return outputs, elements, nil
	}
	dir, err := cache.DefaultDir(root)
	if err != nil || dir == "" {
		return nil, nil, fmt.Errorf("step %s: its detail is in the cache, and there is none (LIFEOS_CACHE=off?)", id)
	}
	c, err := cache.Open(dir)
	if err != nil {
		return nil, nil, err
	}
	load := func(hexID string, into any) error {
		oid, err := cache.ParseOutputID(hexID)
		if err != nil {
			return err
		}
		data, err := c.ReadObject(oid, -1)
		if err != nil {
			return fmt.Errorf("step %s: its detail is no longer in the cache (%w)", id, err)
		}
		return json.Unmarshal(data, into)
	}
	if s.OutputsObject != "" {
		if err := load(s.OutputsObject, &outputs); err != nil {
			return nil, nil, err
		}
	}
	if s.ElementsObject != "" {
		elements = nil
		if err := load(s.ElementsObject, &elements); err != nil {
			return nil, nil, err
		}
	}
	return outputs, elements, nil
}

// bufferWriter appends to a byte slice.
type bufferWriter struct{ b *[]byte }

func (w bufferWriter) Write(p []byte) (int, error) {
	*w.b = append(*w.b, p...)
	return len(p), nil
}

// keepRuns is how many run records pruning keeps whatever their age: enough
// history to compare with, without a directory that grows for ever.
const keepRuns = 200

// pruneRuns removes run directories beyond the newest keep that are older
// than maxAge. Run ids start with their UTC start time, so names sort by age.
func pruneRuns(root string, keep int, maxAge time.Duration, now time.Time) error {
	ents, err := os.ReadDir(RunsDir(root))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	cutoff := now.Add(-maxAge).UTC().Format("20060102-150405")
	ents = slices.DeleteFunc(ents, func(e fs.DirEntry) bool { return strings.HasPrefix(e.Name(), ".") }) // .tmp
	for i := 0; i < len(ents)-keep; i++ {                                                                // ReadDir sorts by name: oldest first
		name := ents[i].Name()
		if name < cutoff {
			if err := robustio.RemoveAll(filepath.Join(RunsDir(root), name)); err != nil {
				return err
			}
		}
	}
	return nil
}

// ListRuns returns the records in root's runs directory, newest first.
// Unreadable records are skipped: a run killed before writing its record
// leaves only logs.
func ListRuns(root string) ([]*Record, error) {
	ents, err := os.ReadDir(RunsDir(root))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*Record
	for _, e := range ents {
		if r, err := readRecord(filepath.Join(RunsDir(root), e.Name())); err == nil {
			out = append(out, r)
		}
	}
	// By start time: two runs in the same second have ids in random order.
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Started.Equal(out[j].Started) {
			return out[i].Started.After(out[j].Started)
		}
		return out[i].ID > out[j].ID
	})
	return out, nil
}

func readRecord(dir string) (*Record, error) {
	data, err := os.ReadFile(filepath.Join(dir, "run.json"))
	if err != nil {
		return nil, err
	}
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return &r, nil
}

// FindRun returns the record whose id is id or starts with it ("last" is the
// newest). An ambiguous prefix is an error listing the matches.
func FindRun(root, id string) (*Record, error) {
	runs, err := ListRuns(root)
	if err != nil {
		return nil, err
	}
	if len(runs) == 0 {
		return nil, &UsageError{errors.New("no runs recorded in " + RunsDir(root))}
	}
	if id == "last" || id == "" {
		return runs[0], nil
	}
	var matches []*Record
	for _, r := range runs {
		if r.ID == id {
			return r, nil
		}
		if strings.HasPrefix(r.ID, id) {
			matches = append(matches, r)
		}
	}
	switch len(matches) {
	case 0:
		return nil, &UsageError{fmt.Errorf("no run %s (lifeos runs list shows them)", id)}
	case 1:
		return matches[0], nil
	}
	ids := make([]string, len(matches))
	for i, m := range matches {
		ids[i] = m.ID
	}
	return nil, &UsageError{fmt.Errorf("run id %s is ambiguous: %s", id, strings.Join(ids, ", "))}
}
