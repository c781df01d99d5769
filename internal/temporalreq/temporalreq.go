// Package temporalreq holds what lifeos hands to lifeos-temporal: plain
// types, so that lifeos itself does not link the Temporal SDK.
package temporalreq

import "time"

// RequestEnv is the environment variable that carries a run request from
// lifeos to lifeos-temporal submit.
const RequestEnv = "LIFEOS_TEMPORAL_REQUEST"

// Conn says how to reach Temporal, as its own tools take it.
type Conn struct {
	Address   string `json:"address"`   // host:port
	Namespace string `json:"namespace"` // "default" when empty
	TLS       bool   `json:"tls,omitempty"`
	CertPath  string `json:"tls_cert_path,omitempty"`
	KeyPath   string `json:"tls_key_path,omitempty"`
	CAPath    string `json:"tls_ca_path,omitempty"`
	// ServerName overrides the name checked in the server's certificate.
	ServerName string `json:"tls_server_name,omitempty"`
}

// Request is `lifeos run --engine temporal`, parsed and checked by lifeos.
type Request struct {
	Root       string        `json:"root"`
	Pipeline   string        `json:"pipeline"` // relative to Root
	Options    Options       `json:"options"`
	Conn       Conn          `json:"conn"`
	Detach     bool          `json:"detach,omitempty"`
	NoDownload bool          `json:"no_download,omitempty"`
	Quiet      bool          `json:"quiet,omitempty"`
	Verbose    bool          `json:"verbose,omitempty"`
	JSON       bool          `json:"json,omitempty"`
	Color      string        `json:"color,omitempty"`
	Heartbeat  time.Duration `json:"heartbeat,omitempty"`
	Chunk      int           `json:"chunk,omitempty"`
}

// Options are the run's runner.Options, as JSON.
type Options struct {
	PolicyFile string   `json:"policy_file,omitempty"`
	Sets       []string `json:"sets,omitempty"`
	Params     []string `json:"params,omitempty"`
	Only       []string `json:"only,omitempty"`
}
