package config

import (
	"fmt"
	"reflect"

	"github.com/dustin/go-humanize"
	"github.com/go-viper/mapstructure/v2"
)

// ByteSize is a size in bytes, written as a number or with a unit
// ("5MiB", "256 KiB", "1MB").
type ByteSize int64

func (b ByteSize) String() string { return humanize.IBytes(uint64(b)) }

// byteSizeHook decodes strings and numbers into ByteSize.
func byteSizeHook() mapstructure.DecodeHookFuncType {
	return func(from, to reflect.Type, data any) (any, error) {
		if to != reflect.TypeFor[ByteSize]() {
			return data, nil
		}
		switch v := data.(type) {
		case string:
			n, err := humanize.ParseBytes(v)
			if err != nil {
				return nil, fmt.Errorf("%q is not a size (use e.g. 5MiB or 1048576)", v)
			}
			return ByteSize(n), nil
		case int:
			return ByteSize(v), nil
		case int64:
			return ByteSize(v), nil
		case uint64:
			return ByteSize(v), nil
		case float64:
			return ByteSize(v), nil
		}
		return data, nil
	}
}
