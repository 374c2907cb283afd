package bigtable

import (
	"context"
	"fmt"
	"slices"

	"cloud.google.com/go/bigtable"
)

// CreateTable creates table with the column family the store needs
// (DefaultFamily unless family is given), without a garbage-collection
// policy. An existing table or family is left as it is.
func CreateTable(ctx context.Context, admin *bigtable.AdminClient, table string, family ...string) error {
	fam := DefaultFamily
	if len(family) > 0 {
		fam = family[0]
	}
	tables, err := admin.Tables(ctx)
	if err != nil {
		return fmt.Errorf("bigtable store: listing tables: %w", err)
	}
	if !slices.Contains(tables, table) {
		if err := admin.CreateTable(ctx, table); err != nil {
			return fmt.Errorf("bigtable store: creating table %s: %w", table, err)
		}
	}
	info, err := admin.TableInfo(ctx, table)
	if err != nil {
		return fmt.Errorf("bigtable store: table %s: %w", table, err)
	}
	if slices.Contains(info.Families, fam) {
		return nil
	}
	if err := admin.CreateColumnFamily(ctx, table, fam); err != nil {
		return fmt.Errorf("bigtable store: creating column family %s in table %s: %w", fam, table, err)
	}
	return nil
}
