/**
 * Evaluation datasets: JSON (`{ features: number[][], labels: number[], <column>: [...] }`), CSV
 * with a header (csv-parse), and NumPy `.npz` archives (fflate) or a `.npy` array with its labels
 * in another `.npy`. Every problem is a DatasetError naming the file, and where it applies the
 * row and the column: a ragged row, a value that is not a number, a label out of range, a missing
 * column, a width that does not fit the model's input.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { unzipSync } from 'fflate';

export class DatasetError extends Error {
  override name = 'DatasetError';
}

export interface DatasetSpec {
  file: string;
  /** Model input → column names (CSV, JSON) or the array's key (npz, JSON). */
  inputs: Record<string, string | string[]>;
  /** Label column or key; default `labels` (`label` for CSV). */
  label?: string;
  /** `.npy` dataset: the labels' own `.npy` file. */
  labelsFile?: string;
  /** Column (or key) whose values split the rows into slices. */
  sliceColumn?: string;
}

export interface EvalDataset {
  file: string;
  rows: number;
  /** Model input → rows × width values. */
  inputs: Record<string, number[][]>;
  labels: number[];
  slices?: string[];
}

export async function loadDataset(spec: DatasetSpec): Promise<EvalDataset> {
  const ext = path.extname(spec.file).toLowerCase();
  let ds: EvalDataset;
  if (ext === '.csv') ds = await loadCsv(spec);
  else if (ext === '.npz') ds = await loadNpz(spec);
  else if (ext === '.npy') ds = await loadNpy(spec);
  else ds = await loadJson(spec);
  if (ds.rows === 0) throw new DatasetError(`evaluation dataset ${spec.file} is empty`);
  return ds;
}

async function read(file: string): Promise<Buffer> {
  try {
    return await fs.readFile(file);
  } catch (err) {
    throw new DatasetError(
      `evaluation dataset ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? err})`,
    );
  }
}

function number(file: string, row: number, column: string, v: unknown): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : Number.NaN;
  if (!Number.isFinite(n)) {
    throw new DatasetError(
      `evaluation dataset ${file} row ${row}, column ${column}: ${JSON.stringify(v)} is not a number`,
    );
  }
  return n;
}

// ---- CSV ----

async function loadCsv(spec: DatasetSpec): Promise<EvalDataset> {
  const text = (await read(spec.file)).toString('utf8');
  let records: string[][];
  try {
    records = parseCsv(text, { skip_empty_lines: true, trim: true, relax_column_count: true }) as string[][];
  } catch (err) {
    throw new DatasetError(`evaluation dataset ${spec.file}: not valid CSV: ${(err as Error).message}`);
  }
  const [header, ...body] = records;
  if (!header) throw new DatasetError(`evaluation dataset ${spec.file} is empty`);
  const col = new Map(header.map((h, i) => [h, i]));
  const label = spec.label ?? 'label';
  const need = (name: string, field: string): number => {
    const i = col.get(name);
    if (i === undefined) {
      throw new DatasetError(
        `evaluation dataset ${spec.file}: column ${JSON.stringify(name)} (${field}) is missing; the header has ${header.join(', ')}`,
      );
    }
    return i;
  };
  const labelAt = need(label, 'evaluation.label');
  const sliceAt =
    spec.sliceColumn !== undefined ? need(spec.sliceColumn, 'evaluation.slices.column') : undefined;
  const inputCols: Record<string, number[]> = {};
  for (const [input, cols] of Object.entries(spec.inputs)) {
    const names =
      cols === '*'
        ? header.filter((h, i) => i !== labelAt && i !== sliceAt && h !== '')
        : Array.isArray(cols)
          ? cols
          : [cols];
    inputCols[input] = names.map((n) => need(n, `evaluation.inputs.${input}`));
  }
  const out: EvalDataset = { file: spec.file, rows: body.length, inputs: {}, labels: [] };
  for (const input of Object.keys(inputCols)) out.inputs[input] = [];
  if (sliceAt !== undefined) out.slices = [];
  body.forEach((r, j) => {
    const row = j + 1; // data rows, counted from 1 after the header (file line row + 1)
    if (r.length !== header.length) {
      throw new DatasetError(
        `evaluation dataset ${spec.file} row ${row} (line ${row + 1}): ${r.length} values, expected ${header.length} (the header's columns)`,
      );
    }
    for (const [input, cols] of Object.entries(inputCols)) {
      out.inputs[input]!.push(cols.map((c) => number(spec.file, row, header[c]!, r[c])));
    }
    out.labels.push(number(spec.file, row, label, r[labelAt]));
    if (sliceAt !== undefined) out.slices!.push(r[sliceAt]!);
  });
  return out;
}

// ---- JSON ----

async function loadJson(spec: DatasetSpec): Promise<EvalDataset> {
  let parsed: unknown;
  try {
    parsed = JSON.parse((await read(spec.file)).toString('utf8'));
  } catch (err) {
    if (err instanceof DatasetError) throw err;
    throw new DatasetError(`evaluation dataset ${spec.file}: not valid JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new DatasetError(
      `evaluation dataset ${spec.file}: expected an object { features: number[][], labels: number[] }`,
    );
  }
  const obj = parsed as Record<string, unknown>;
  const label = spec.label ?? 'labels';
  const array = (key: string, field: string): unknown[] => {
    const v = obj[key];
    if (!Array.isArray(v)) {
      throw new DatasetError(
        `evaluation dataset ${spec.file}: key ${JSON.stringify(key)} (${field}) is missing or not an array; it has ${Object.keys(obj).join(', ')}`,
      );
    }
    return v;
  };
  const labelsRaw = array(label, 'evaluation.label');
  const out: EvalDataset = { file: spec.file, rows: labelsRaw.length, inputs: {}, labels: [] };
  out.labels = labelsRaw.map((v, j) => number(spec.file, j + 1, label, v));
  for (const [input, source] of Object.entries(spec.inputs)) {
    const key = source === '*' ? 'features' : Array.isArray(source) ? undefined : source;
    if (key === undefined)
      throw new DatasetError(`evaluation.inputs.${input}: a JSON dataset names one key per input`);
    const rows = array(key, `evaluation.inputs.${input}`);
    if (rows.length !== out.rows) {
      throw new DatasetError(
        `evaluation dataset ${spec.file}: ${key} has ${rows.length} rows, ${label} has ${out.rows}`,
      );
    }
    let width = -1;
    out.inputs[input] = rows.map((r, j) => {
      const values = Array.isArray(r) ? r : [r];
      if (width < 0) width = values.length;
      if (values.length !== width) {
        throw new DatasetError(
          `evaluation dataset ${spec.file} row ${j + 1}, ${key}: ${values.length} values, expected ${width} (row 1's)`,
        );
      }
      return values.map((v, c) => number(spec.file, j + 1, `${key}[${c}]`, v));
    });
  }
  if (spec.sliceColumn !== undefined) {
    const s = array(spec.sliceColumn, 'evaluation.slices.column');
    if (s.length !== out.rows) {
      throw new DatasetError(
        `evaluation dataset ${spec.file}: ${spec.sliceColumn} has ${s.length} rows, ${label} has ${out.rows}`,
      );
    }
    out.slices = s.map(String);
  }
  return out;
}

// ---- NumPy ----

interface NpyArray {
  shape: number[];
  /** Numbers for numeric dtypes, strings for unicode (`<U`) ones. */
  values: (number | string)[];
}

/** Parses one .npy (format 1.0-3.0): C-order numeric, boolean or unicode arrays. */
export function parseNpy(buf: Uint8Array, where: string): NpyArray {
  const magic = Buffer.from(buf.subarray(0, 6)).toString('latin1');
  if (magic !== '\x93NUMPY') throw new DatasetError(`${where}: not a NumPy .npy array (bad magic)`);
  const major = buf[6]!;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = Buffer.from(buf.subarray(start, start + headerLen)).toString(
    major === 3 ? 'utf8' : 'latin1',
  );
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined)
    throw new DatasetError(`${where}: unreadable .npy header ${header.trim()}`);
  if (fortran === 'True')
    throw new DatasetError(
      `${where}: Fortran-order arrays are not supported; save with np.ascontiguousarray`,
    );
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const offset = start + headerLen;
  const m = /^([<>|=])([a-zA-Z])(\d+)$/.exec(descr);
  if (!m) throw new DatasetError(`${where}: dtype ${descr} is not supported`);
  const [, order, kind, sizeText] = m;
  const size = Number(sizeText);
  const little = order !== '>';
  const values: (number | string)[] = new Array(count);
  if (kind === 'U') {
    for (let i = 0; i < count; i++) {
      let s = '';
      for (let c = 0; c < size; c++) {
        const code = view.getUint32(offset + (i * size + c) * 4, little);
        if (code === 0) break;
        s += String.fromCodePoint(code);
      }
      values[i] = s;
    }
    return { shape, values };
  }
  const read: ((at: number) => number) | undefined = (
    {
      f4: (at: number) => view.getFloat32(at, little),
      f8: (at: number) => view.getFloat64(at, little),
      i1: (at: number) => view.getInt8(at),
      u1: (at: number) => view.getUint8(at),
      b1: (at: number) => view.getUint8(at),
      i2: (at: number) => view.getInt16(at, little),
      u2: (at: number) => view.getUint16(at, little),
      i4: (at: number) => view.getInt32(at, little),
      u4: (at: number) => view.getUint32(at, little),
      i8: (at: number) => Number(view.getBigInt64(at, little)),
      u8: (at: number) => Number(view.getBigUint64(at, little)),
    } as Record<string, (at: number) => number>
  )[`${kind}${size}`];
  if (!read) throw new DatasetError(`${where}: dtype ${descr} is not supported`);
  if (offset + count * size > buf.byteLength)
    throw new DatasetError(`${where}: truncated: ${count} values of ${size} bytes expected`);
  for (let i = 0; i < count; i++) values[i] = read(offset + i * size);
  return { shape, values };
}

function matrix(a: NpyArray, where: string): number[][] {
  if (a.shape.length < 1 || a.shape.length > 2) {
    throw new DatasetError(
      `${where}: expected a 1-D or 2-D array (rows × features), got shape (${a.shape.join(', ')})`,
    );
  }
  const rows = a.shape[0]!;
  const width = a.shape[1] ?? 1;
  const out: number[][] = [];
  for (let r = 0; r < rows; r++) {
    const row: number[] = [];
    for (let c = 0; c < width; c++) {
      const v = a.values[r * width + c];
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw new DatasetError(
          `${where} row ${r + 1}, column ${c}: ${JSON.stringify(v)} is not a finite number`,
        );
      }
      row.push(v);
    }
    out.push(row);
  }
  return out;
}

function vector(a: NpyArray, where: string): (number | string)[] {
  if (a.shape.length !== 1 && !(a.shape.length === 2 && a.shape[1] === 1)) {
    throw new DatasetError(`${where}: expected a 1-D array, got shape (${a.shape.join(', ')})`);
  }
  return a.values;
}

async function loadNpz(spec: DatasetSpec): Promise<EvalDataset> {
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(new Uint8Array(await read(spec.file)));
  } catch (err) {
    if (err instanceof DatasetError) throw err;
    throw new DatasetError(`evaluation dataset ${spec.file}: not a .npz archive: ${(err as Error).message}`);
  }
  const keys = Object.keys(files).map((k) => k.replace(/\.npy$/, ''));
  const arr = (key: string, field: string): NpyArray => {
    const f = files[`${key}.npy`];
    if (!f) {
      throw new DatasetError(
        `evaluation dataset ${spec.file}: array ${JSON.stringify(key)} (${field}) is missing; it holds ${keys.join(', ')}`,
      );
    }
    return parseNpy(f, `evaluation dataset ${spec.file}[${key}]`);
  };
  const label = spec.label ?? 'labels';
  const where = (k: string): string => `evaluation dataset ${spec.file}[${k}]`;
  const labels = vector(arr(label, 'evaluation.label'), where(label)).map((v, j) =>
    number(spec.file, j + 1, label, v),
  );
  const out: EvalDataset = { file: spec.file, rows: labels.length, inputs: {}, labels };
  for (const [input, source] of Object.entries(spec.inputs)) {
    const key = source === '*' ? 'features' : Array.isArray(source) ? undefined : source;
    if (key === undefined)
      throw new DatasetError(`evaluation.inputs.${input}: a .npz dataset names one array per input`);
    const m = matrix(arr(key, `evaluation.inputs.${input}`), where(key));
    if (m.length !== labels.length) {
      throw new DatasetError(
        `evaluation dataset ${spec.file}: ${key} has ${m.length} rows, ${label} has ${labels.length}`,
      );
    }
    out.inputs[input] = m;
  }
  if (spec.sliceColumn !== undefined) {
    const s = vector(arr(spec.sliceColumn, 'evaluation.slices.column'), where(spec.sliceColumn));
    if (s.length !== labels.length) {
      throw new DatasetError(
        `evaluation dataset ${spec.file}: ${spec.sliceColumn} has ${s.length} rows, ${label} has ${labels.length}`,
      );
    }
    out.slices = s.map(String);
  }
  return out;
}

async function loadNpy(spec: DatasetSpec): Promise<EvalDataset> {
  const inputs = Object.keys(spec.inputs);
  if (inputs.length !== 1)
    throw new DatasetError(
      `evaluation dataset ${spec.file}: a .npy file feeds one input; use .npz for several`,
    );
  if (!spec.labelsFile) {
    throw new DatasetError(
      `evaluation dataset ${spec.file}: a .npy dataset needs evaluation.labelsFile (the labels' .npy)`,
    );
  }
  const features = matrix(
    parseNpy(new Uint8Array(await read(spec.file)), `evaluation dataset ${spec.file}`),
    `evaluation dataset ${spec.file}`,
  );
  const labelsWhere = `evaluation labels ${spec.labelsFile}`;
  const labels = vector(parseNpy(new Uint8Array(await read(spec.labelsFile)), labelsWhere), labelsWhere).map(
    (v, j) => number(spec.labelsFile!, j + 1, 'label', v),
  );
  if (labels.length !== features.length) {
    throw new DatasetError(
      `evaluation dataset ${spec.file} has ${features.length} rows, its labels ${spec.labelsFile} ${labels.length}`,
    );
  }
  return { file: spec.file, rows: labels.length, inputs: { [inputs[0]!]: features }, labels };
}
