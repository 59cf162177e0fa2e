package kmsg

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want Record
		err  bool
	}{
		{
			name: "simple",
			in:   "6,339,5140900,-;NET: Registered protocol family 10\n",
			want: Record{Priority: Info, Facility: 0, Seq: 339, TimeSinceBootMicro: 5140900, Flags: "-", Message: "NET: Registered protocol family 10"},
		},
		{
			name: "user facility warning",
			in:   "12,1024,99,-;hello from user space\n",
			want: Record{Priority: Warning, Facility: 1, Seq: 1024, TimeSinceBootMicro: 99, Flags: "-", Message: "hello from user space"},
		},
		{
			name: "dictionary continuation lines",
			in:   "7,160,424069,-;pci_root PNP0A03:00: host bridge window [io  0x0000-0x0cf7] (ignored)\n SUBSYSTEM=acpi\n DEVICE=+acpi:PNP0A03:00\n",
			want: Record{Priority: Debug, Seq: 160, TimeSinceBootMicro: 424069, Flags: "-",
				Message: "pci_root PNP0A03:00: host bridge window [io  0x0000-0x0cf7] (ignored)",
				Dict:    map[string]string{"SUBSYSTEM": "acpi", "DEVICE": "+acpi:PNP0A03:00"}},
		},
		{
			name: "extra prefix fields and continuation flag",
			in:   "3,5,6,c,caller=T1;text;with;semicolons\n",
			want: Record{Priority: Err, Seq: 5, TimeSinceBootMicro: 6, Flags: "c", Message: "text;with;semicolons"},
		},
		{
			name: "escaped bytes",
			in:   `4,1,2,-;tab\x09and backslash\x5c and bad\xZZ end` + "\n",
			want: Record{Priority: Warning, Seq: 1, TimeSinceBootMicro: 2, Flags: "-", Message: "tab\tand backslash\\ and bad\\xZZ end"},
		},
		{
			name: "highest facility",
			in:   "2047,1,1,-;x",
			want: Record{Priority: Debug, Facility: 255, Seq: 1, TimeSinceBootMicro: 1, Flags: "-", Message: "x"},
		},
		{name: "empty message", in: "0,1,2,-;\n", want: Record{Priority: Emerg, Seq: 1, TimeSinceBootMicro: 2, Flags: "-"}},
		{name: "no separator", in: "6,1,2,-\n", err: true},
		{name: "too few fields", in: "6,1,2;msg\n", err: true},
		{name: "priority overflow", in: "2048,1,2,-;msg", err: true},
		{name: "negative priority", in: "-1,1,2,-;msg", err: true},
		{name: "bad sequence", in: "6,x,2,-;msg", err: true},
		{name: "bad timestamp", in: "6,1,,-;msg", err: true},
		{name: "empty", in: "", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.in))
			if tc.err {
				if !errors.Is(err, ErrInvalidRecord) {
					t.Fatalf("Parse(%q) error = %v, want ErrInvalidRecord", tc.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Parse(%q)\n got %+v\nwant %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestPriorityString(t *testing.T) {
	want := []string{"Emerg", "Alert", "Crit", "Err", "Warning", "Notice", "Info", "Debug"}
	for i, w := range want {
		if got := Priority(i).String(); got != w {
			t.Errorf("Priority(%d) = %q, want %q", i, got, w)
		}
	}
	if got := Priority(9).String(); got != "Priority(9)" {
		t.Errorf("Priority(9) = %q", got)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"6,339,5140900,-;NET: Registered protocol family 10\n",
		"7,160,424069,-;pci_root: window\n SUBSYSTEM=acpi\n DEVICE=+acpi:PNP0A03:00\n",
		"3,5,6,c,caller=T1;a;b\n",
		`4,1,2,-;\x09\x5c\xZZ\x`,
		"2047,18446744073709551615,18446744073709551615,-;x",
		";", ",,,;", "1,2,3,4",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidRecord) {
				t.Fatalf("error %v is not ErrInvalidRecord", err)
			}
			return
		}
		if r.Priority > Debug {
			t.Fatalf("priority %d out of range", r.Priority)
		}
		if strings.ContainsRune(r.Message, '\n') {
			t.Fatalf("message spans lines: %q", r.Message)
		}
		if utf8.ValidString(string(b)) && !strings.Contains(string(b), `\x`) && !strings.Contains(string(b), r.Message) {
			t.Fatalf("message %q not taken from the record", r.Message)
		}
		if r.Priority.String() == "" {
			t.Fatal("empty priority name")
		}
	})
}
