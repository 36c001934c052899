import Checkbox from '@material-ui/core/Checkbox';
import FormControlLabel from '@material-ui/core/FormControlLabel';
import TextField from '@material-ui/core/TextField';
import { makeStyles } from '@material-ui/core/styles';
import { useState } from 'react';

const useStyles = makeStyles(theme => ({
  controls: {
    display: 'flex',
    gap: theme.spacing(2),
    alignItems: 'center',
    padding: theme.spacing(0, 2),
  },
}));

/** A name filter and a "only those with a problem" switch (on at first), for long lists. */
export interface ListFilterState {
  onlyProblems: boolean;
  /** Only problems, and no name filter: an empty list then means there is no problem at all. */
  showsEveryProblem: boolean;
  /** Whether `name` contains the filter text, in any case. */
  matches(name: string): boolean;
  controls: JSX.Element;
}

export function useListFilter(options: {
  id: string;
  filterLabel: string;
  onlyProblemsLabel: string;
}): ListFilterState {
  const classes = useStyles();
  const [filter, setFilter] = useState('');
  const [onlyProblems, setOnlyProblems] = useState(true);
  const needle = filter.trim().toLocaleLowerCase('en-US');
  return {
    onlyProblems,
    showsEveryProblem: onlyProblems && !needle,
    matches: name =>
      !needle || name.toLocaleLowerCase('en-US').includes(needle),
    controls: (
      <div className={classes.controls}>
        <TextField
          id={options.id}
          label={options.filterLabel}
          size="small"
          value={filter}
          onChange={e => setFilter(e.target.value)}
        />
        <FormControlLabel
          control={
            <Checkbox
              checked={onlyProblems}
              onChange={e => setOnlyProblems(e.target.checked)}
            />
          }
          label={options.onlyProblemsLabel}
        />
      </div>
    ),
  };
}
