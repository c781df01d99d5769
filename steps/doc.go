// Package steps defines the Step contract and lifeos's built-in step types.
//
// # The contract
//
// A step type is a params struct: the runner decodes a pipeline step's
// `with:` block into a fresh value of it (strictly, by its `yaml` tags),
// asks its Deps what it reads and writes, and then calls its Run method. A
// step is a pure function of its params and of what its Deps declare:
// everything that can change its result must be in its params or named by
// Deps (files in Reads, items, upstream outputs, policy paths), because the
// runner's cache key is made of exactly those (plus the type's name and
// Version; see runner/key.go).
//
// # What a step may do
//
// Run receives an *Env with the workspace root, a log writer and a cancellable
// context. It must stop promptly when the context is cancelled and must not
// write in the workspace except to the paths Deps.Writes declares, which the
// runner owns (stores, restores exactly, moves aside on failure), and to
// append-only logs such as the scorecard's eval history. It
// returns outputs (any JSON-encodable map), which become
// `steps.<id>.outputs` for later expressions.
//
// # What a step must not do
//
// Steps never import the runner, yaml.v3 or expr, nor each other: what they
// need from the engine reaches them through Env as small interfaces. A test
// in this package guards the rule.
package steps
