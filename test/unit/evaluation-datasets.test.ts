/**
 * Evaluation dataset loaders: CSV with a header, the JSON form, NumPy .npz and .npy as NumPy
 * itself writes them (test/python/evaluation_reference.py), and errors that name the file, the
 * row and the column.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadDataset } from '../../activities/evaluation-datasets';

const FIX = path.join(__dirname, '../fixtures/evaluation');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-datasets-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const write = (name: string, text: string): string => {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, text);
  return f;
};
const expected = JSON.parse(fs.readFileSync(path.join(FIX, 'small-values.json'), 'utf8')) as {
  features: number[][];
  labels: number[];
  country: string[];
};

describe('evaluation datasets', () => {
  it('reads CSV with a header: label and slice columns apart, several inputs by column lists', async () => {
    const f = write('ok.csv', 'a,b,c,label,country\n1,2,3,0,de\n4,5,6,1,"fr"\n');
    const one = await loadDataset({ file: f, inputs: { features: '*' }, sliceColumn: 'country' });
    expect(one).toEqual({
      file: f,
      rows: 2,
      inputs: {
        features: [
          [1, 2, 3],
          [4, 5, 6],
        ],
      },
      labels: [0, 1],
      slices: ['de', 'fr'],
    });
    const two = await loadDataset({ file: f, inputs: { dense: ['a', 'b'], extra: 'c' } });
    expect(two.inputs).toEqual({
      dense: [
        [1, 2],
        [4, 5],
      ],
      extra: [[3], [6]],
    });
  });

  it('names the file, row and column of a CSV problem', async () => {
    const ragged = write('ragged.csv', 'a,b,label\n1,2,0\n3,1\n');
    await expect(loadDataset({ file: ragged, inputs: { features: '*' } })).rejects.toThrow(
      `evaluation dataset ${ragged} row 2 (line 3): 2 values, expected 3 (the header's columns)`,
    );
    const text = write('text.csv', 'a,b,label\n1,2,0\n3,x,1\n');
    await expect(loadDataset({ file: text, inputs: { features: '*' } })).rejects.toThrow(
      `evaluation dataset ${text} row 2, column b: "x" is not a number`,
    );
    const nolabel = write('nolabel.csv', 'a,b,y\n1,2,0\n');
    await expect(loadDataset({ file: nolabel, inputs: { features: '*' } })).rejects.toThrow(
      `evaluation dataset ${nolabel}: column "label" (evaluation.label) is missing; the header has a, b, y`,
    );
    await expect(
      loadDataset({ file: nolabel, inputs: { features: ['a', 'q'] }, label: 'y' }),
    ).rejects.toThrow(/column "q" \(evaluation\.inputs\.features\) is missing/);
  });

  it('reads the JSON form, with a slice key, and names a ragged row', async () => {
    const ds = await loadDataset({
      file: path.join(FIX, 'small-values.json'),
      inputs: { features: '*' },
      sliceColumn: 'country',
    });
    expect(ds.rows).toBe(6);
    expect(ds.slices).toEqual(expected.country);
    const bad = write('bad.json', JSON.stringify({ features: [[1, 2], [3]], labels: [0, 1] }));
    await expect(loadDataset({ file: bad, inputs: { features: '*' } })).rejects.toThrow(
      `evaluation dataset ${bad} row 2, features: 1 values, expected 2 (row 1's)`,
    );
  });

  it('reads .npz archives and .npy arrays as NumPy writes them (float32/float64, int32/int64, unicode)', async () => {
    const npz = await loadDataset({
      file: path.join(FIX, 'small.npz'),
      inputs: { features: '*' },
      sliceColumn: 'country',
    });
    expect(npz.labels).toEqual(expected.labels);
    expect(npz.slices).toEqual(expected.country);
    npz.inputs.features!.forEach((row, i) =>
      row.forEach((v, j) => expect(v).toBeCloseTo(expected.features[i]![j]!, 6)),
    );
    const npy = await loadDataset({
      file: path.join(FIX, 'small-features.npy'),
      inputs: { features: '*' },
      labelsFile: path.join(FIX, 'small-labels.npy'),
    });
    expect(npy.labels).toEqual(expected.labels);
    expect(npy.inputs.features).toEqual(npz.inputs.features);
    await expect(
      loadDataset({ file: path.join(FIX, 'small.npz'), inputs: { features: 'pixels' } }),
    ).rejects.toThrow(
      /array "pixels" \(evaluation\.inputs\.features\) is missing; it holds features, labels, country/,
    );
  });
});
