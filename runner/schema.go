package runner

import (
	"reflect"

	"github.com/lifeos/lifeos/steps"
)

// Schema returns a JSON Schema (draft-07, what editors' YAML extensions
// read) of the pipeline format, with each step type's `with:` parameters.
//
// It is generated from the step params structs rather than by a reflection
// library because every typed value may also be a ${{ }} expression string,
// which such libraries cannot express.
func Schema() map[string]any {
	exprRef := map[string]any{"$ref": "#/definitions/expression"}
	retries := map[string]any{
		"description": "retries after a failure, with exponential backoff",
		"anyOf": []any{
			map[string]any{"type": "integer", "minimum": 0},
			map[string]any{"type": "object", "additionalProperties": false, "properties": map[string]any{
				"max":     map[string]any{"type": "integer", "minimum": 0},
				"backoff": map[string]any{"type": "string", "description": "first delay, doubled each retry (e.g. 2s)"},
			}},
		},
	}
	duration := map[string]any{"type": "string", "pattern": `^([0-9.]+(ns|us|µs|ms|s|m|h))+$`, "description": "a duration such as 90s or 10m"}
	boolExpr := map[string]any{"type": "string", "description": "an expr-lang expression (no ${{ }})"}
	names := steps.Names()
	var conds []any
	defs := map[string]any{
		"expression": map[string]any{"type": "string", "pattern": `^\$\{\{.*\}\}$`, "description": "a ${{ }} expression"},
	}
	for _, n := range names {
		t, _ := steps.Lookup(n)
		def := typeSchema(reflect.TypeOf(t.New()).Elem(), exprRef)
		def["description"] = t.Summary
		defs["with."+n] = def
		conds = append(conds, map[string]any{
			"if":   map[string]any{"properties": map[string]any{"uses": map[string]any{"const": n}}},
			"then": map[string]any{"properties": map[string]any{"with": map[string]any{"$ref": "#/definitions/with." + n}}},
		})
	}
	step := map[string]any{
		"type":                 "object",
		"required":             []any{"id", "uses"},
		"additionalProperties": false,
		"properties": map[string]any{
			"id":                map[string]any{"type": "string", "pattern": stepIDRe.String(), "description": "referenced as steps.<id>"},
			"description":       map[string]any{"type": "string"},
			"uses":              map[string]any{"enum": toAny(names), "description": "the step type"},
			"needs":             map[string]any{"description": "steps that must finish first", "anyOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "array", "items": map[string]any{"type": "string"}}}},
			"when":              merge(boolExpr, map[string]any{"description": "run only if this expression is true"}),
			"gate":              merge(boolExpr, map[string]any{"description": "checked after the step (outputs in scope); false blocks what follows and exits 1"}),
			"foreach":           map[string]any{"description": "run once per element (item, item_index in scope)", "anyOf": []any{boolExpr, map[string]any{"type": "object", "additionalProperties": false, "required": []any{"glob"}, "properties": map[string]any{"glob": map[string]any{"type": "string"}}}}},
			"with":              map[string]any{"type": "object", "description": "parameters of the step type"},
			"retries":           retries,
			"timeout":           duration,
			"cache":             map[string]any{"type": "boolean", "description": "false: never cache this step"},
			"continue_on_error": map[string]any{"type": "boolean", "description": "a failure does not stop the run"},
			"queue":             map[string]any{"type": "string", "pattern": `^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$`, "description": "the task queue of the workers that carry it out with run --engine temporal (default: default)"},
			"cost": map[string]any{"type": "object", "additionalProperties": false, "description": "bill the step's running time (GPU time) to the cost log",
				"properties": map[string]any{"activity": map[string]any{"type": "string"}, "rate_per_hour": map[string]any{"type": "number", "minimum": 0}, "estimate": duration}},
			"repeat": map[string]any{"type": "object", "additionalProperties": false, "required": []any{"until", "max"},
				"description": "run again (iteration, previous in scope) until until holds or max iterations ran",
				"properties": map[string]any{"until": boolExpr, "max": map[string]any{"type": "integer", "minimum": 1, "maximum": 1000},
					"on_max": map[string]any{"enum": []any{"fail", "warn"}}}},
		},
		"allOf": conds,
	}
	defs["step"] = step
	return map[string]any{
		"$schema":              "http://json-schema.org/draft-07/schema#",
		"$id":                  "https://lifeos.dev/schema/pipeline-v1.json",
		"title":                "lifeos pipeline (version 1)",
		"type":                 "object",
		"required":             []any{"version", "steps"},
		"additionalProperties": false,
		"properties": map[string]any{
			"version":     map[string]any{"const": 1},
			"name":        map[string]any{"type": "string"},
			"description": map[string]any{"type": "string"},
			"policy":      map[string]any{"type": "string", "description": "threshold policy file (default " + DefaultPolicyFile + ")"},
			"params":      map[string]any{"type": "object", "description": "parameters with defaults, overridable with --param name=value"},
			"defaults": map[string]any{"type": "object", "additionalProperties": false, "properties": map[string]any{
				"retries": retries, "timeout": duration,
			}},
			"steps": map[string]any{"type": "array", "minItems": 1, "items": map[string]any{"$ref": "#/definitions/step"}},
		},
		"definitions": defs,
	}
}

func typeSchema(t reflect.Type, exprRef map[string]any) map[string]any {
	orExpr := func(s map[string]any) map[string]any { return map[string]any{"anyOf": []any{s, exprRef}} }
	if t == durationType {
		return map[string]any{"type": "string", "description": "a duration such as 90s"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return typeSchema(t.Elem(), exprRef)
	case reflect.Struct:
		props := map[string]any{}
		names, idx := yamlFields(t)
		for _, name := range names {
			f := t.Field(idx[name])
			s := typeSchema(f.Type, exprRef)
			if doc := f.Tag.Get("doc"); doc != "" {
				s = merge(s, map[string]any{"description": doc})
			}
			props[name] = s
		}
		return orExpr(map[string]any{"type": "object", "additionalProperties": false, "properties": props})
	case reflect.Slice, reflect.Array:
		return orExpr(map[string]any{"type": "array", "items": typeSchema(t.Elem(), exprRef)})
	case reflect.Map:
		return orExpr(map[string]any{"type": "object", "additionalProperties": typeSchema(t.Elem(), exprRef)})
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return orExpr(map[string]any{"type": "boolean"})
	case reflect.Float32, reflect.Float64:
		return orExpr(map[string]any{"type": "number"})
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return orExpr(map[string]any{"type": "integer"})
	}
	return map[string]any{}
}

func merge(a, b map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
