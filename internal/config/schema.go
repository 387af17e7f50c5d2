package config

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"

	"github.com/siemship/siemship/internal/bytesize"
)

// field is one key of a component's options: where it lives in the options
// struct and what it holds.
type field struct {
	key   string // relative to the component, e.g. "batch_events"
	index []int  // reflect.Value.FieldByIndex path
	typ   reflect.Type
	// freeForm: a map with keys of the user's choosing (tags, headers).
	freeForm bool
}

// fieldsOf lists the keys of an options struct from its mapstructure tags:
// `mapstructure:",squash"` embeds keys at the same level, a nested struct
// adds a level ("groups.labels"), "-" is not a key.
func fieldsOf(t reflect.Type) []field {
	var out []field
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("mapstructure")
			name, opts, _ := strings.Cut(tag, ",")
			idx := append(append([]int(nil), index...), i)
			switch {
			case name == "-" || !f.IsExported():
			case opts == "squash":
				walk(f.Type, prefix, idx)
			case name == "":
			case f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Duration]():
				walk(f.Type, prefix+name+".", idx)
			case f.Type.Kind() == reflect.Pointer:
				// Optional blocks (route selectors) are decoded as a whole elsewhere.
			default:
				out = append(out, field{key: prefix + name, index: idx, typ: f.Type, freeForm: f.Type.Kind() == reflect.Map})
			}
		}
	}
	walk(t, "", nil)
	return out
}

// valueOf returns the field's current value in the options at opts (a pointer).
func (f field) valueOf(opts any) any {
	return reflect.ValueOf(opts).Elem().FieldByIndex(f.index).Interface()
}

// set decodes raw into the field of the options at opts, or returns what the
// key expects in words.
func (f field) set(opts any, raw any) error {
	dst := reflect.ValueOf(opts).Elem().FieldByIndex(f.index)
	v, err := f.decode(raw)
	if err != nil {
		return err
	}
	dst.Set(reflect.ValueOf(v).Convert(f.typ))
	return nil
}

var errForm = errors.New("wrong form")

func (f field) decode(raw any) (any, error) {
	isSize := f.typ == reflect.TypeFor[bytesize.Size]() ||
		strings.HasSuffix(f.key, "_bytes") && f.typ.Kind() >= reflect.Int && f.typ.Kind() <= reflect.Int64
	switch {
	case isSize:
		return decodeSize(raw)
	case f.typ == reflect.TypeFor[time.Duration]():
		return decodeDuration(raw)
	}
	if t, ok := raw.(time.Time); ok && f.typ.Kind() == reflect.String {
		// YAML reads an unquoted RFC 3339 time as a timestamp (start_from).
		return t.Format(time.RFC3339Nano), nil
	}
	out := reflect.New(f.typ)
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		Result:           out.Interface(),
		WeaklyTypedInput: f.typ.Kind() != reflect.String, // "5000" from the environment is a number
		DecodeHook:       mapstructure.StringToSliceHookFunc(","),
	})
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return out.Elem().Interface(), nil
	}
	if err := dec.Decode(raw); err != nil {
		return nil, errForm
	}
	return out.Elem().Interface(), nil
}

func decodeSize(raw any) (int64, error) {
	switch v := raw.(type) {
	case string:
		n, err := bytesize.Parse(v)
		return int64(n), err
	case int:
		return int64(v), nil
	case int64:
		return v, nil
	case uint64:
		return int64(v), nil
	case float64:
		return int64(v), nil
	case bytesize.Size:
		return int64(v), nil
	}
	return 0, errForm
}

// decodeDuration accepts Go durations with a unit; a bare number is refused
// (250 would be 250 ns and burn a core polling), except 0.
func decodeDuration(raw any) (time.Duration, error) {
	switch v := raw.(type) {
	case time.Duration:
		return v, nil
	case string:
		if n, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && n != 0 {
			return 0, fmt.Errorf("%q has no unit", v)
		}
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			return 0, errForm
		}
		return d, nil
	case int, int64, float64, uint64:
		if reflect.ValueOf(v).IsZero() {
			return 0, nil
		}
		return 0, fmt.Errorf("%v has no unit", v)
	}
	return 0, errForm
}

// form says in words what a key of type t takes, with an example.
func form(f field) string {
	switch {
	case f.typ == reflect.TypeFor[time.Duration]():
		return "a duration with a unit, e.g. 250ms, 30s or 2m"
	case f.typ == reflect.TypeFor[bytesize.Size]() || strings.HasSuffix(f.key, "_bytes"):
		return "a size, e.g. 5MiB, 256KiB or 1048576"
	}
	switch f.typ.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "a whole number"
	case reflect.Float64:
		return "a number"
	case reflect.Slice:
		return "a list of strings, e.g. [a, b]"
	case reflect.Map:
		return "a map of strings, e.g. {key: value}"
	}
	return "a string"
}
