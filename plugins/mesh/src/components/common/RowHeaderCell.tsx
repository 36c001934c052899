import TableCell from '@material-ui/core/TableCell';
import { PropsWithChildren } from 'react';

/**
 * The first cell of a body row, naming the row. MUI gives every body cell the role "cell", even a
 * `th`; the explicit role lets assistive technology (and tests) find a row by its cluster. A
 * cluster name is never broken across lines.
 */
export function RowHeaderCell(props: PropsWithChildren<{}>) {
  return (
    <TableCell
      component="th"
      scope="row"
      role="rowheader"
      style={{ whiteSpace: 'nowrap' }}
    >
      {props.children}
    </TableCell>
  );
}
