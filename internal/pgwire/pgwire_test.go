package pgwire

import (
	"bytes"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

// The encoders write what pgproto3, the maintained reference, writes for the same message.
func TestEncodersMatchPgproto3(t *testing.T) {
	enc := func(m pgproto3.Message) []byte {
		b, err := m.Encode(nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := []struct {
		name      string
		got, want []byte
	}{
		{"ReadyForQuery", AppendReadyForQuery(nil, TxInBlock), enc(&pgproto3.ReadyForQuery{TxStatus: 'T'})},
		{"BindComplete", AppendBindComplete(nil), enc(&pgproto3.BindComplete{})},
		{"Terminate", AppendTerminate(nil), enc(&pgproto3.Terminate{})},
		{"CommandComplete", AppendCommandComplete(nil, []byte("SELECT 1")), enc(&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")})},
		{"ErrorResponse", AppendErrorResponse([]byte("xx"), "FATAL", "53300", "too many")[2:],
			enc(&pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: "53300", Message: "too many"})},
	}
	for _, c := range cases {
		if !bytes.Equal(c.got, c.want) {
			t.Errorf("%s: %q, pgproto3 writes %q", c.name, c.got, c.want)
		}
	}
	e := AppendErrorResponse(nil, "ERROR", "42P01", "no table")[HeaderLen:]
	if string(ErrorField(e, FieldCode)) != "42P01" || string(Severity(e)) != "ERROR" || string(ErrorField(e, FieldMessage)) != "no table" || ErrorField(e, 'D') != nil {
		t.Errorf("ErrorField of %q", e)
	}
}

// The readers read what pgproto3 writes, and refuse what is cut short, without allocating.
func TestReaders(t *testing.T) {
	bind, err := (&pgproto3.Bind{PreparedStatement: "s1", ParameterFormatCodes: []int16{0, 1},
		Parameters: [][]byte{[]byte("k1"), nil, {0, 0, 0, 7}}, ResultFormatCodes: []int16{1}}).Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	b := Bind(bind[HeaderLen:])
	var got []string
	ok := b.Params(func(i int, format int16, v []byte) bool {
		got = append(got, string(rune('0'+format))+":"+string(v))
		return true
	})
	if !ok || len(got) != 3 || got[0] != "0:k1" || got[1] != "1:" || b.NumParams() != 3 || !bytes.Equal(b.ResultFormats(), []byte{0, 1, 0, 1}) {
		t.Errorf("Bind: %v %v, %d params, result formats %v", ok, got, b.NumParams(), b.ResultFormats())
	}
	for n := range len(b) - 1 {
		if b[:n].NumParams() == 3 && b[:n].ResultFormats() != nil {
			t.Errorf("a Bind cut at %d bytes reads as whole", n)
		}
	}

	rd, _ := (&pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{{Name: []byte("id")}, {Name: []byte("status")}}}).Encode(nil)
	var names []string
	if !RowDescriptionColumns(rd[HeaderLen:], func(i int, name []byte) bool { names = append(names, string(name)); return true }) || len(names) != 2 || names[1] != "status" {
		t.Errorf("RowDescription columns %v", names)
	}
	dr, _ := (&pgproto3.DataRow{Values: [][]byte{[]byte("7"), nil, []byte("SUCCESS")}}).Encode(nil)
	if v, ok := DataRowValue(dr[HeaderLen:], 2); !ok || string(v) != "SUCCESS" {
		t.Errorf("DataRowValue 2: %q %v", v, ok)
	}
	if _, ok := DataRowValue(dr[HeaderLen:], 1); ok {
		t.Error("a NULL column read as a value")
	}
	if _, ok := DataRowValue(dr[HeaderLen:len(dr)-2], 2); ok {
		t.Error("a value cut off read as whole")
	}

	var keys []string
	TextArrayElements(nil, []byte(`{a,"b c","NULL",NULL,"x\"y"}`), func(e []byte) { keys = append(keys, string(e)) })
	if len(keys) != 4 || keys[1] != "b c" || keys[2] != "NULL" || keys[3] != `x"y` {
		t.Errorf("text array: %q", keys)
	}
	// int4[] {7, NULL, 9} in binary: ndim 1, no nulls flag, OID 23, dim 3, lower bound 1.
	arr := []byte{0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 23, 0, 0, 0, 3, 0, 0, 0, 1,
		0, 0, 0, 4, 0, 0, 0, 7, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 4, 0, 0, 0, 9}
	var elems int
	BinaryArrayElements(arr, func(e []byte) { elems++ })
	if elems != 2 {
		t.Errorf("binary array: %d elements, want 2", elems)
	}
	u := AppendUUID(nil, []byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 1, 2, 3, 4, 5, 6, 7, 8})
	if string(u) != "12345678-9abc-def0-0102-030405060708" {
		t.Errorf("uuid %s", u)
	}

	e := AppendErrorResponse(nil, "ERROR", "42P01", "no table")[HeaderLen:]
	if n := testing.AllocsPerRun(100, func() {
		b.Params(func(int, int16, []byte) bool { return true })
		DataRowValue(dr[HeaderLen:], 2)
		ErrorField(e, FieldCode)
		RowDescriptionColumns(rd[HeaderLen:], func(int, []byte) bool { return true })
	}); n != 0 {
		t.Errorf("readers allocate %.0f times a run", n)
	}
}
