package kstreams

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"testing"

	"github.com/kstreams-go/kstreams/core/internal/graph"
	"github.com/kstreams-go/kstreams/core/internal/runtime"
)

// The public types are converted from the internal ones by value: their
// constants must be equal, and the struct conversions must carry every field.

func TestPublicConstantsMatchInternal(t *testing.T) {
	stages := map[Stage]graph.Stage{StageDeserialize: graph.StageDeserialize, StageProcess: graph.StageProcess, StageProduce: graph.StageProduce}
	for pub, in := range stages {
		if uint8(pub) != uint8(in) || pub.String() != in.String() {
			t.Errorf("Stage %d (%s) differs from the internal %d (%s)", pub, pub, in, in)
		}
	}
	orders := map[Order]graph.Order{PartitionOrder: graph.OrderPartition, KeyOrder: graph.OrderKey, Unordered: graph.OrderUnordered}
	for pub, in := range orders {
		if uint8(pub) != uint8(in) || pub.String() != in.String() {
			t.Errorf("Order %d (%s) differs from the internal %d (%s)", pub, pub, in, in)
		}
	}
	clocks := map[PunctuationType]graph.PunctuationType{StreamTime: graph.StreamTime, WallClockTime: graph.WallClockTime}
	for pub, in := range clocks {
		if uint8(pub) != uint8(in) {
			t.Errorf("PunctuationType %s is %d, the internal one %d", pub, pub, in)
		}
	}
	id := graph.TaskID{Subtopology: 3, Partition: 17}
	if got := TaskID(id); got.String() != id.String() || got.Subtopology != 3 || got.Partition != 17 {
		t.Errorf("TaskID(%v) = %v", id, got)
	}
	if ShutdownBudget != runtime.ShutdownBudget {
		t.Errorf("ShutdownBudget is %v, the runtime's %v", ShutdownBudget, runtime.ShutdownBudget)
	}
}

// fillDistinct sets every field of the struct *p to a distinct non-zero value.
func fillDistinct(t *testing.T, p any) {
	v := reflect.ValueOf(p).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(v.Type().Field(i).Name)
		case reflect.Int, reflect.Int32, reflect.Int64:
			f.SetInt(int64(i + 1))
		case reflect.Bool:
			f.SetBool(true)
		default:
			t.Fatalf("field %s: kind %s not handled", v.Type().Field(i).Name, f.Kind())
		}
	}
}

// sameFields fails unless pub has exactly in's fields with equal values.
func sameFields(t *testing.T, pub, in any) {
	pv, iv := reflect.ValueOf(pub), reflect.ValueOf(in)
	if pv.NumField() != iv.NumField() {
		t.Errorf("%T has %d fields, %T has %d", pub, pv.NumField(), in, iv.NumField())
	}
	for i := range iv.NumField() {
		name := iv.Type().Field(i).Name
		f := pv.FieldByName(name)
		if !f.IsValid() {
			t.Errorf("%T has no field %s (%T has)", pub, name, in)
			continue
		}
		if !reflect.DeepEqual(f.Interface(), iv.Field(i).Interface()) {
			t.Errorf("%T.%s = %v, want %v", pub, name, f.Interface(), iv.Field(i).Interface())
		}
	}
}

func TestAppStatsCarriesEveryCounter(t *testing.T) {
	var s runtime.Stats
	fillDistinct(t, &s)
	sameFields(t, appStats(s), s)
}

func TestRestoreProgressCarriesEveryField(t *testing.T) {
	var p runtime.RestoreProgress
	fillDistinct(t, &p)
	sameFields(t, restoreProgress(p), p)

	var got []RestoreProgress
	a := &App{}
	if err := WithRestoreListener(func(p RestoreProgress) { got = append(got, p) })(a); err != nil {
		t.Fatal(err)
	}
	a.cfg.OnRestore(p)
	if len(got) != 1 || got[0] != restoreProgress(p) {
		t.Errorf("the listener got %+v, want [%+v]", got, restoreProgress(p))
	}
}

func TestRecordErrorIsFoundAsPublicType(t *testing.T) {
	cause := &os.PathError{Op: "open", Path: "/x", Err: os.ErrNotExist}
	in := &graph.RecordError{Topic: "orders", Partition: 2, Offset: 41, Node: "validate", Stage: graph.StageProduce, Err: cause}
	err := fmt.Errorf("kstreams: %w (the record is not committed)", fmt.Errorf("task 0_2: %w", in))
	var re *RecordError
	if !errors.As(err, &re) {
		t.Fatalf("errors.As(%v) found no *RecordError", err)
	}
	want := &RecordError{Topic: "orders", Partition: 2, Offset: 41, Node: "validate", Stage: StageProduce, Err: cause}
	if *re != *want {
		t.Errorf("RecordError = %+v, want %+v", re, want)
	}
	if re.Error() != in.Error() {
		t.Errorf("message %q, the internal error's %q", re.Error(), in.Error())
	}
	var pe *os.PathError
	if !errors.Is(err, os.ErrNotExist) || !errors.As(err, &pe) || pe != cause {
		t.Errorf("errors.Is/As do not reach the cause through %v", err)
	}
	var other *fs.PathError
	if errors.As(fmt.Errorf("x: %w", &graph.RecordError{Err: errors.New("y")}), &other) {
		t.Error("errors.As found an unrelated type")
	}
}
