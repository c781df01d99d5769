package lazyre

import "testing"

func TestNewCompilesOnce(t *testing.T) {
	re := New(`^a+$`)
	first, second := re(), re()
	if first != second {
		t.Fatal("compiled twice")
	}
	if !re().MatchString("aaa") || re().MatchString("ab") {
		t.Fatal("wrong expression")
	}
}

func TestNewPanicsOnBadExpression(t *testing.T) {
	re := New(`(`)
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for an invalid expression")
		}
	}()
	re()
}
