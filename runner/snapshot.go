package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/lifeos/lifeos/internal/atomicfile"
	"github.com/lifeos/lifeos/internal/par"
	"github.com/lifeos/lifeos/internal/pathglob"
	"github.com/lifeos/lifeos/internal/robustio"
	"github.com/lifeos/lifeos/runner/cache"
)

// # Workspace snapshots
//
// A step carried out on another machine reads the same files it would
// read here. Before a run is spread over machines, the workspace is
// snapshotted: every file's content is put in the shared store by its
// SHA-256 (a file the store has is not sent again) and a manifest of
// paths, digests and modes is stored as an object, whose digest names the
// snapshot. Small files travel end to end in packs, objects of their own:
// a request per caption or prompt file cost more than the file (1,000 of
// them took 0.9 s to send, and as long to fetch on each worker). A
// worker materialises the snapshot into a folder of its own, fetching
// only the contents its cache lacks; what the steps wrote there is
// restored by the engine from the cache as usual.

// SnapshotFile is one file of a snapshot.
type SnapshotFile struct {
	Path   string         `json:"path"` // slash-separated, relative to the root
	SHA256 cache.OutputID `json:"sha256"`
	Size   int64          `json:"size"`
	Exec   bool           `json:"exec,omitempty"` // an executable (a script)
	// Pack is the 1-based index in Snapshot.Packs of the pack holding a
	// small file, at Offset; 0 for a file sent as an object of its own.
	Pack   int   `json:"pack,omitempty"`
	Offset int64 `json:"offset,omitempty"`
}

// Snapshot is a workspace's files at one moment.
type Snapshot struct {
	Version int `json:"version"`
	// Packs are objects holding small files end to end (SnapshotFile.Pack).
	Packs []cache.OutputID `json:"packs,omitempty"`
	Files []SnapshotFile   `json:"files"`
}

// ErrSnapshotFormat is Materialize's error for a manifest it cannot read:
// one another lifeos wrote, most often a newer one.
var ErrSnapshotFormat = errors.New("not a snapshot manifest of this lifeos")

// snapshotVersion is the manifest's format: 2 has packs. Materialize reads
// both.
const snapshotVersion = 2

// Files of at most packSmall bytes travel in packs of up to packBytes (a
// variable for the tests).
const packSmall = 64 << 10

var packBytes = 32 << 20

// SnapshotStats says what taking a snapshot sent.
type SnapshotStats struct {
	Files, Sent      int
	Bytes, SentBytes int64
}

// TakeSnapshot puts the files of the workspace at root in c's shared store
// and returns the digest of the snapshot's manifest, stored there too.
// Files under the folders of skip (workspace-relative, slash-separated:
// the run's outputs) are left out.
func TakeSnapshot(ctx context.Context, root string, c *cache.Cache, skip []string) (cache.OutputID, SnapshotStats, error) {
	var st SnapshotStats
	if c == nil || c.Remote() == nil {
		return cache.OutputID{}, st, errors.New("a snapshot needs a shared cache (LIFEOS_CACHE=s3://bucket/prefix or cache.remote in " + WorkspaceFile + ")")
	}
	skipped := func(rel string) bool {
		if pathglob.Hidden(strings.SplitN(rel, "/", 2)[0]) { // lifeos's state, git's: no step's input
			return true
		}
		for _, s := range skip {
			if rel == s || strings.HasPrefix(rel, strings.TrimSuffix(s, "/")+"/") {
				return true
			}
		}
		return false
	}
	sums := c.StatCache()
	var snap Snapshot
	snap.Version = snapshotVersion
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if skipped(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil // folders are walked; links and devices are not content
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		f := SnapshotFile{Path: rel, Size: info.Size(), Exec: info.Mode()&0o111 != 0}
		if f.Size > packSmall { // a small one is summed as it is packed
			if f.SHA256, f.Size, err = sums.SumInfo(path, info); err != nil {
				return fmt.Errorf("snapshot %s: %w", rel, err)
			}
		}
		snap.Files = append(snap.Files, f)
		return nil
	})
	if err != nil {
		return cache.OutputID{}, st, err
	}
	if err := sums.Save(); err != nil {
		return cache.OutputID{}, st, err
	}
	sort.Slice(snap.Files, func(i, j int) bool { return snap.Files[i].Path < snap.Files[j].Path })
	st.Files = len(snap.Files)
	var files []cache.LocalFile
	for _, f := range snap.Files {
		st.Bytes += f.Size
		if f.Size > packSmall {
			files = append(files, cache.LocalFile{Path: filepath.Join(root, filepath.FromSlash(f.Path)), ID: f.SHA256, Size: f.Size})
		}
	}
	// send puts one object (a pack, the manifest) unless the store has it.
	send := func(what string, data []byte) error {
		sent, err := c.UploadData(ctx, data)
		if err != nil {
			return fmt.Errorf("snapshot %s: %w", what, err)
		}
		if sent {
			st.Sent++
			st.SentBytes += int64(len(data))
		}
		return nil
	}
	if err := packSnapshot(root, &snap, func(p []byte) error { return send("pack", p) }); err != nil {
		return cache.OutputID{}, st, err
	}
	sent, sentBytes, err := c.UploadFiles(ctx, files)
	st.Sent += sent
	st.SentBytes += sentBytes
	if err != nil {
		return cache.OutputID{}, st, fmt.Errorf("snapshot: %w", err)
	}
	data, err := json.Marshal(snap)
	if err != nil {
		return cache.OutputID{}, st, err
	}
	if err := send("manifest", data); err != nil {
		return cache.OutputID{}, st, err
	}
	id := cache.Sum(data)
	return id, st, nil
}

// packSnapshot reads the small files of snap into packs, sums them and
// records where each is, and sends each pack as it fills: one is held at a
// time, not a dataset of thumbnails. send must not keep the pack it is
// given.
func packSnapshot(root string, snap *Snapshot, send func([]byte) error) error {
	var pack []byte
	flush := func() error {
		if len(pack) == 0 {
			return nil
		}
		snap.Packs = append(snap.Packs, cache.Sum(pack))
		err := send(pack)
		pack = pack[:0]
		return err
	}
	type place struct {
		pack   int
		offset int64
	}
	at := map[cache.OutputID]place{} // a content once, whatever its copies
	for i := range snap.Files {
		f := &snap.Files[i]
		if f.Size > packSmall {
			continue
		}
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f.Path)))
		if err != nil {
			return fmt.Errorf("snapshot: %w", err)
		}
		if len(data) > packSmall {
			return fmt.Errorf("snapshot: %s grew while it was snapshotted", f.Path)
		}
		f.SHA256, f.Size = cache.Sum(data), int64(len(data))
		if p, ok := at[f.SHA256]; ok {
			f.Pack, f.Offset = p.pack, p.offset
			continue
		}
		if len(pack)+len(data) > packBytes {
			if err := flush(); err != nil {
				return err
			}
		}
		f.Pack, f.Offset = len(snap.Packs)+1, int64(len(pack))
		pack = append(pack, data...)
		at[f.SHA256] = place{f.Pack, f.Offset}
	}
	return flush()
}

// Materialize makes dir hold exactly the files of snapshot id (besides
// its .lifeos folder), fetching what c lacks from its shared store and
// checking every digest. Files that already match are left alone. dir may
// be a copy of another snapshot or what a step left: what the snapshot
// does not hold goes first (a file or link where it has a folder, a
// folder or link where it has a file), so that nothing is written through
// a link or fails on a folder.
//
// like, when not "", is another copy of the snapshot (in use or not): a
// file it holds with the snapshot's content and mode is hard-linked into
// dir rather than written. Creating a file cost a worker's disk 20 to 350
// µs, and a second copy for a chunk beside the first is a file per image;
// a link makes no new file. The copies then share those files as the
// steps of one workspace do, and each use checks them all the same.
func Materialize(ctx context.Context, c *cache.Cache, id cache.OutputID, dir, like string) error {
	data, err := c.ReadObject(id, -1)
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", id.Short(), err)
	}
	var snap Snapshot
	if err := json.Unmarshal(data, &snap); err != nil {
		return fmt.Errorf("snapshot %s: %w: %v", id.Short(), ErrSnapshotFormat, err)
	}
	if snap.Version < 1 || snap.Version > snapshotVersion {
		return fmt.Errorf("snapshot %s: %w (format %d; this lifeos reads 1 to %d)", id.Short(), ErrSnapshotFormat, snap.Version, snapshotVersion)
	}
	want := make(map[string]bool, len(snap.Files))
	for _, f := range snap.Files {
		if err := checkSnapshotPath(f.Path); err != nil {
			return fmt.Errorf("snapshot %s: %w", id.Short(), err)
		}
		if f.Pack < 0 || f.Pack > len(snap.Packs) {
			return fmt.Errorf("snapshot %s: %s: no pack %d", id.Short(), f.Path, f.Pack)
		}
		want[f.Path] = true
	}
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return err
	}
	attic := AtticDir(dir)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case rel == ".lifeos":
			return filepath.SkipDir
		case d.IsDir() && want[rel]:
			if err := robustio.RemoveAll(p); err != nil {
				return err
			}
			return filepath.SkipDir
		case d.IsDir():
			return nil
		case !d.Type().IsRegular():
			return os.Remove(p) // a link
		case !want[rel]:
			// A file the snapshot lacks (an input deleted since, what a
			// step wrote here, a file where the snapshot has a folder):
			// set aside, for the step to link back should it restore
			// the same file (RunOptions.LinkFrom).
			return setAside(p, filepath.Join(attic, filepath.FromSlash(rel)))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", id.Short(), err)
	}
	sums := c.StatCache()
	// The files dir lacks: those sent alone, then the small ones, a pack
	// at a time (each read once, and kept in c for the next copy).
	var loose []SnapshotFile
	byPack := map[int][]SnapshotFile{}
	for _, f := range snap.Files {
		if sum, _, err := sums.Sum(filepath.Join(dir, filepath.FromSlash(f.Path))); err == nil && sum == f.SHA256 {
			continue
		}
		if like != "" && linkFile(sums, like, dir, f) {
			continue
		}
		if f.Pack == 0 {
			loose = append(loose, f)
		} else {
			byPack[f.Pack] = append(byPack[f.Pack], f)
		}
	}
	write := func(pack []byte) func(SnapshotFile) error {
		return func(f SnapshotFile) error {
			if err := materializeFile(c, dir, f, pack); err != nil {
				return fmt.Errorf("snapshot %s: %s: %w", id.Short(), f.Path, err)
			}
			return nil
		}
	}
	if err := par.Each(ctx, cache.Transfers, loose, write(nil)); err != nil {
		return err
	}
	for _, i := range slices.Sorted(maps.Keys(byPack)) {
		pack, err := c.ReadObject(snap.Packs[i-1], -1)
		if err != nil {
			return fmt.Errorf("snapshot %s: pack %d: %w", id.Short(), i, err)
		}
		if err := par.Each(ctx, cache.Transfers, byPack[i], write(pack)); err != nil {
			return err
		}
	}
	return sums.Save()
}

// AtticDir is where Materialize sets aside the files of dir the snapshot
// lacks: most are what the steps of earlier uses of dir wrote, which the
// steps of later ones restore from the cache (the step after a foreach
// restores the files of every chunk). Linking one set aside back costs
// 0.01 ms; writing it anew 0.15-0.8 ms a file on a worker's disk, and
// the copy of its bytes. It holds one file per path set aside, the last;
// whoever gives dir to another snapshot empties it.
func AtticDir(dir string) string { return filepath.Join(dir, ".lifeos", "attic") }

// setAside moves the file p to dst, in place of what dst held, or removes
// p when it cannot.
func setAside(p, dst string) error {
	// Removed first: a rename onto another name of the same file (one
	// linked back from the attic) would leave p where it is.
	if err := os.Remove(dst); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return os.Remove(p)
	}
	if os.MkdirAll(filepath.Dir(dst), 0o777) == nil && os.Rename(p, dst) == nil {
		return nil
	}
	return os.Remove(p)
}

// linkFile makes dir's copy of f a hard link to like's when that holds
// f's content and mode, and reports whether it did.
func linkFile(sums *cache.StatCache, like, dir string, f SnapshotFile) bool {
	src := filepath.Join(like, filepath.FromSlash(f.Path))
	dst := filepath.Join(dir, filepath.FromSlash(f.Path))
	return linkChecked(sums, src, dst, f.SHA256, func(st fs.FileInfo) bool { return (st.Mode()&0o111 != 0) == f.Exec })
}

// linkChecked replaces dst with a hard link to src when src is a regular
// file that modeOK accepts with content sum, and reports whether it did.
// The file linked is the one checked: the same inode, size and time after
// the link as before it. A link that fails leaves dst to be written as
// any other file.
func linkChecked(sums *cache.StatCache, src, dst string, sum cache.OutputID, modeOK func(fs.FileInfo) bool) bool {
	st, err := os.Lstat(src)
	if err != nil || !st.Mode().IsRegular() || !modeOK(st) {
		return false
	}
	if got, _, err := sums.SumInfo(src, st); err != nil || got != sum {
		return false
	}
	if os.MkdirAll(filepath.Dir(dst), 0o777) != nil {
		return false
	}
	os.Remove(dst) // what is there differs (the caller checked)
	if os.Link(src, dst) != nil {
		return false
	}
	if lt, err := os.Lstat(dst); err != nil || !os.SameFile(st, lt) || !lt.ModTime().Equal(st.ModTime()) || lt.Size() != st.Size() {
		os.Remove(dst)
		return false
	}
	return true
}

// materializeFile writes dir's copy of f, from its pack or its object.
func materializeFile(c *cache.Cache, dir string, f SnapshotFile, pack []byte) error {
	dst := filepath.Join(dir, filepath.FromSlash(f.Path))
	perm := os.FileMode(0o666)
	if f.Exec {
		perm = 0o777
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o777); err != nil {
		return err
	}
	if f.Pack == 0 {
		return c.CopyObject(f.SHA256, dst, perm, false)
	}
	if f.Offset < 0 || f.Size < 0 || f.Offset > int64(len(pack)) || f.Size > int64(len(pack))-f.Offset {
		return fmt.Errorf("not in its pack (%d bytes at %d of %d)", f.Size, f.Offset, len(pack))
	}
	data := pack[f.Offset : f.Offset+f.Size]
	if cache.Sum(data) != f.SHA256 {
		return errors.New("its pack holds other content (digest mismatch)")
	}
	// Checked on every use, as a copied object is: not synced.
	return atomicfile.WriteFileUnsynced(dst, data, perm)
}

// checkSnapshotPath refuses a manifest path that would leave the folder it
// is materialised in: a manifest comes from a shared store.
func checkSnapshotPath(p string) error {
	if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, "\\") || filepath.VolumeName(filepath.FromSlash(p)) != "" {
		return fmt.Errorf("path %q is not a relative workspace path", p)
	}
	for _, part := range strings.Split(p, "/") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("path %q is not a relative workspace path", p)
		}
	}
	return nil
}
