package main

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/lifeos/lifeos/internal/s3test"
)

// cmdS3Server starts a real S3-compatible server (versitygw) with BUCKET
// made, and sets what a client needs (AWS_ENDPOINT_URL and the keys) and
// S3DATA, the folder its buckets are. -nometa makes it ignore
// conditional writes, as some S3 services do. Scenarios that use it start
// with [!s3] skip (hasS3Server).
func cmdS3Server(ts *testscript.TestScript, neg bool, args []string) {
	fs := flag.NewFlagSet("s3server", flag.ContinueOnError)
	nometa := fs.Bool("nometa", false, "")
	if neg || fs.Parse(args) != nil || fs.NArg() != 1 {
		ts.Fatalf("usage: s3server [-nometa] BUCKET")
	}
	bin, err := s3test.Binary(ts.Getenv("REPO"))
	ts.Check(err)
	var opts []string
	if *nometa {
		opts = append(opts, "--nometa")
	}
	dir := ts.MkAbs("s3data")
	srv, err := s3test.Start(bin, dir, []string{fs.Arg(0)}, opts...)
	ts.Check(err)
	ts.Defer(srv.Stop)
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		ts.Setenv(k, v)
	}
	ts.Setenv("S3DATA", dir)
}

// hasS3Server is the [s3] condition: versitygw is installed. Where it is
// required (CI) it is always true, so that a missing server fails instead
// of skipping.
func hasS3Server() bool {
	if s3test.Required() {
		return true
	}
	repo, err := os.Getwd()
	if err != nil {
		return false
	}
	_, err = s3test.Binary(repo)
	return err == nil
}

// cmdDamage flips one byte in the middle of every file under each PATH (a
// file or a folder): bit rot, or a partial upload, in a store. With -as
// FILE, only the files named by FILE's SHA-256 (the object holding FILE).
func cmdDamage(ts *testscript.TestScript, neg bool, args []string) {
	fset := flag.NewFlagSet("damage", flag.ContinueOnError)
	as := fset.String("as", "", "")
	if neg || fset.Parse(args) != nil || fset.NArg() == 0 {
		ts.Fatalf("usage: damage [-as FILE] PATH...")
	}
	name := ""
	if *as != "" {
		sum := sha256.Sum256([]byte(ts.ReadFile(*as)))
		name = hex.EncodeToString(sum[:])
	}
	n := 0
	for _, a := range fset.Args() {
		ts.Check(filepath.WalkDir(ts.MkAbs(a), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || (name != "" && d.Name() != name) {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil || len(b) == 0 {
				return err
			}
			b[len(b)/2] ^= 0xff
			n++
			return os.WriteFile(path, b, 0o666)
		}))
	}
	if n == 0 {
		ts.Fatalf("damage: nothing to damage under %v", fset.Args())
	}
	ts.Logf("damaged %d files", n)
}
