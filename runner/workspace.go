package runner

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/lifeos/lifeos/internal/s3store"
	"github.com/lifeos/lifeos/runner/cache"
)

// WorkspaceFile is the optional settings file at a workspace's root,
// meant to be committed: what everybody working there shares.
const WorkspaceFile = "lifeos.yaml"

// WorkspaceConfig is the content of lifeos.yaml.
type WorkspaceConfig struct {
	Cache struct {
		// Remote is a shared store behind the local cache, s3://bucket/prefix.
		Remote string `yaml:"remote"`
	} `yaml:"cache"`
}

// LoadWorkspaceConfig reads root/lifeos.yaml; the zero config when there
// is none. Unknown keys and wrong types are errors at their line.
func LoadWorkspaceConfig(root string) (WorkspaceConfig, error) {
	var cfg WorkspaceConfig
	name := filepath.Join(root, WorkspaceFile)
	src, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return cfg, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return cfg, yamlSyntaxError(WorkspaceFile, src, err)
	}
	if len(doc.Content) == 0 {
		return cfg, nil
	}
	d := &withDecoder{file: WorkspaceFile, src: src}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return cfg, d.errorf(top, "top level", "expected a mapping, got %s", describeNode(top))
	}
	fields := map[string]reflect.Value{"cache": reflect.ValueOf(&cfg.Cache).Elem()}
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		field, ok := fields[k.Value]
		if !ok {
			return cfg, d.errorf(k, "top level", "unknown key `%s`%s (known: cache)", k.Value, suggest(k.Value, []string{"cache"}))
		}
		if err := d.decode(v, field, k.Value); err != nil {
			return cfg, err
		}
	}
	if r := cfg.Cache.Remote; r != "" {
		if _, err := s3store.Open(r); err != nil {
			n := findKey(doc.Content[0], "cache", "remote")
			return cfg, d.errorf(n, "cache.remote", "%v", err)
		}
	}
	return cfg, nil
}

// findKey returns the value node at a path of mapping keys, or n itself.
func findKey(n *yaml.Node, path ...string) *yaml.Node {
	for _, key := range path {
		found := false
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == key {
					n, found = n.Content[i+1], true
					break
				}
			}
		}
		if !found {
			return n
		}
	}
	return n
}

// RemoteCache returns the URL of the shared store of the workspace at
// root: $LIFEOS_CACHE when it is an s3:// URL, else lifeos.yaml's
// cache.remote; "" for none. LIFEOS_CACHE=off turns it off too.
func RemoteCache(root string) (string, error) {
	switch env := os.Getenv("LIFEOS_CACHE"); {
	case s3store.IsURL(env):
		if _, err := s3store.Open(env); err != nil {
			return "", &UsageError{fmt.Errorf("LIFEOS_CACHE: %w", err)}
		}
		return env, nil
	case env == "off":
		return "", nil
	}
	cfg, err := LoadWorkspaceConfig(root)
	if err != nil {
		return "", err
	}
	return cfg.Cache.Remote, nil
}

// OpenCache opens the cache of the workspace at root with its shared store
// behind it, if it has one; nil when caching is off. warn receives the
// store's warnings. The caller flushes the remote (FlushRemote) and
// closes the cache.
func OpenCache(root string, warn func(string)) (*cache.Cache, error) {
	dir, err := cache.DefaultDir(root)
	if err != nil || dir == "" {
		return nil, err
	}
	url, err := RemoteCache(root)
	if err != nil {
		return nil, err
	}
	c, err := cache.Open(dir)
	if err != nil {
		return nil, err
	}
	if url != "" {
		s, err := s3store.Open(url)
		if err != nil {
			return nil, &UsageError{err}
		}
		s.Warn = warn
		c.SetRemote(s, warn)
	}
	return c, nil
}

// OpenCacheAt opens the cache in dir with the shared store at url behind
// it (a worker's: its own folder, the runs' store).
func OpenCacheAt(dir, url string, warn func(string)) (*cache.Cache, error) {
	s, err := s3store.Open(url)
	if err != nil {
		return nil, &UsageError{err}
	}
	c, err := cache.Open(dir)
	if err != nil {
		return nil, err
	}
	s.Warn = warn
	c.SetRemote(s, warn)
	return c, nil
}

// remoteSummary is the line a run prints about its shared store, "" when
// nothing was exchanged.
func remoteSummary(url string, st cache.RemoteStats) string {
	var parts []string
	if st.Fetched > 0 {
		parts = append(parts, fmt.Sprintf("%d fetched (%s)", st.Fetched, HumanBytes(st.FetchedBytes)))
	}
	if st.Uploaded > 0 {
		parts = append(parts, fmt.Sprintf("%d uploaded (%s)", st.Uploaded, HumanBytes(st.UploadedBytes)))
	}
	if st.Damaged > 0 {
		parts = append(parts, fmt.Sprintf("%d damaged there, taken as misses", st.Damaged))
	}
	if len(parts) == 0 {
		return ""
	}
	return fmt.Sprintf("shared cache %s: %s", url, strings.Join(parts, ", "))
}

// HumanBytes formats a byte count in binary units (1.5 MiB).
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
