import assert from 'node:assert/strict';
import { test } from 'node:test';
import { throttledLines } from './throttle.js';

test('throttledLines passes one line per interval and drops the ones in between', () => {
  let clock = 1000;
  const written: string[] = [];
  const line = throttledLines(
    (l) => written.push(l),
    60,
    () => clock,
  );
  line('too early');
  clock += 59;
  line('still too early');
  clock += 1;
  line('a');
  clock += 30;
  line('dropped');
  clock += 30;
  line('b');
  clock += 500;
  line('c');
  assert.deepEqual(written, ['a', 'b', 'c']);
});
