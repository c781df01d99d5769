package roc

import (
	"math"
	"testing"
)

func TestSeparated(t *testing.T) {
	good := []float64{0.8, 0.9, 1}
	bad := []float64{0.1, 0.3, 0.5}
	r := Analyze(good, bad, true)
	if r.AUC != 1 || r.EER != 0 {
		t.Fatalf("AUC %v EER %v, want 1 and 0", r.AUC, r.EER)
	}
	// Halfway between the classes, not on an example.
	if r.EERAt.Value != 0.65 {
		t.Errorf("equal-error threshold %v, want 0.65", r.EERAt.Value)
	}
	if p := r.AtFAR(good, bad, 0.01); p.FAR != 0 || p.TAR != 1 || p.Value != 0.65 {
		t.Errorf("at 1%% FAR: %+v, want 0.65 keeping every good example", p)
	}
}

func TestLowerIsBetterAndOverlap(t *testing.T) {
	// Distances: same person small, different people large, one overlap.
	same := []float64{0.1, 0.2, 0.3, 0.55}
	diff := []float64{0.5, 0.7, 0.8, 0.9}
	r := Analyze(same, diff, false)
	// 15 of 16 pairs ordered right.
	if math.Abs(r.AUC-15.0/16) > 1e-12 {
		t.Errorf("AUC %v, want 15/16", r.AUC)
	}
	if r.EER != 0.25 {
		t.Errorf("EER %v at %+v, want 0.25", r.EER, r.EERAt)
	}
	// No false accept at all: only below the closest different pair.
	if p := r.AtFAR(same, diff, 0); p.FAR != 0 || p.TAR != 0.75 || p.Value >= 0.5 {
		t.Errorf("at 0%% FAR: %+v, want 3 of 4 kept below 0.5", p)
	}
	if p := r.At(same, diff, 0.6); p.TAR != 1 || p.FAR != 0.25 {
		t.Errorf("at 0.6: %+v, want TAR 1, FAR 0.25", p)
	}
	// Ties count half.
	if a := Analyze([]float64{1}, []float64{1}, true).AUC; a != 0.5 {
		t.Errorf("tied AUC %v, want 0.5", a)
	}
}
