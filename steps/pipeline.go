package steps

import (
	"context"
	"errors"
	"fmt"

	"github.com/lifeos/lifeos/internal/pathglob"
)

func init() {
	Register(&Type{
		Name:    "pipeline",
		Version: 1,
		Summary: "run another pipeline file as one step; its steps are cached as usual",
		New:     func() Step { return new(SubPipeline) },
	})
}

// SubPipeline runs another pipeline (a cycle that triggers production).
// Its steps use the cache as any run's do, so the step itself always runs
// and costs nothing when they are cached. Its outputs are the sub-run's id
// and the outputs of each of its steps, by step id.
type SubPipeline struct {
	File   string         `yaml:"file" doc:"the pipeline file to run"`
	Params map[string]any `yaml:"params" doc:"its params (as --param would set them)"`
}

// Validate checks the path.
func (p *SubPipeline) Validate() error {
	if p.File == "" {
		return errors.New("pipeline needs file: a pipeline to run")
	}
	return pathglob.Check(p.File)
}

// Deps: volatile, as the sub-pipeline's own steps are what is cached.
func (p *SubPipeline) Deps(map[string]Outputs) Deps { return Deps{Volatile: true} }

// Run runs the pipeline through the engine.
func (p *SubPipeline) Run(ctx context.Context, env *Env) (Outputs, error) {
	if env.RunPipeline == nil {
		return nil, errors.New("internal error: no engine to run a pipeline")
	}
	out, err := env.RunPipeline(ctx, p.File, p.Params)
	if err != nil {
		return out, fmt.Errorf("pipeline %s: %w", p.File, err)
	}
	return out, nil
}
