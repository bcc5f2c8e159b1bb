// wanwu serve's page: pick an image, send it to /api/v1/classify, show the top 3.
// Everything comes from this server; nothing is fetched from anywhere else.
'use strict';

const TEXT = {
  zh: {
    tagline: '离线图像识别：选择、拖入或粘贴一张图片，然后点击识别。',
    tokenLabel: '此服务需要访问令牌：',
    tokenSave: '保存',
    dropHint: '点击选择图片，或拖放 / 粘贴到这里',
    dropHintChange: '点击、拖放或粘贴以更换图片',
    model: '模型',
    classify: '识别',
    classifying: '识别中…',
    resultTitle: '识别结果',
    footer: '图片只在服务器内存中处理，不会保存。',
    switchTo: 'English',
    modelInfo: (m) => `${m.arch} · 输入 ${m.input_size}×${m.input_size} · ${(m.params / 1e6).toFixed(1)}M 参数`,
    timings: (ms) => `解码 ${ms.decode.toFixed(1)} ms · 预处理 ${ms.preprocess.toFixed(1)} ms · 推理 ${ms.inference.toFixed(1)} ms`,
    errors: {
      network: '无法连接到服务器。请检查服务是否仍在运行。',
      400: '这不是可识别的图片（支持 JPEG 和 PNG），或者文件已损坏、不完整。',
      401: '需要有效的访问令牌。请在上方输入令牌后重试。',
      404: '服务器上没有所选的模型。请刷新页面。',
      413: '图片太大了。请换一张较小的图片。',
      415: '不支持这种文件类型。请选择 JPEG 或 PNG 图片。',
      503: '服务器正忙或尚未就绪，请稍后再试。',
      504: '识别超时了，请稍后再试。',
      other: '出错了，识别没有完成。',
      notImage: '请选择图片文件（JPEG 或 PNG）。',
      tooLarge: (mb) => `图片太大了（上限 ${mb} MB）。`,
      noModels: '无法获取模型列表。',
    },
  },
  en: {
    tagline: 'Offline image recognition: choose, drop or paste an image, then press Classify.',
    tokenLabel: 'This service needs an access token:',
    tokenSave: 'Save',
    dropHint: 'Click to choose an image, or drop / paste one here',
    dropHintChange: 'Click, drop or paste to use another image',
    model: 'Model',
    classify: 'Classify',
    classifying: 'Classifying…',
    resultTitle: 'Result',
    footer: 'Images are processed in the server’s memory and never stored.',
    switchTo: '中文',
    modelInfo: (m) => `${m.arch} · input ${m.input_size}×${m.input_size} · ${(m.params / 1e6).toFixed(1)}M parameters`,
    timings: (ms) => `decode ${ms.decode.toFixed(1)} ms · preprocess ${ms.preprocess.toFixed(1)} ms · inference ${ms.inference.toFixed(1)} ms`,
    errors: {
      network: 'Cannot reach the server. Check that the service is still running.',
      400: 'This is not an image wanwu can read (JPEG or PNG), or the file is damaged or incomplete.',
      401: 'A valid access token is needed. Enter it above and try again.',
      404: 'The chosen model is not on this server. Reload the page.',
      413: 'The image is too large. Please use a smaller one.',
      415: 'This kind of file is not supported. Please choose a JPEG or PNG image.',
      503: 'The server is busy or not ready yet. Please try again in a moment.',
      504: 'Classification took too long. Please try again later.',
      other: 'Something went wrong; the image was not classified.',
      notImage: 'Please choose an image file (JPEG or PNG).',
      tooLarge: (mb) => `The image is too large (limit ${mb} MB).`,
      noModels: 'Could not get the list of models.',
    },
  },
};

const $ = (id) => document.getElementById(id);
const state = { lang: 'en', file: null, previewUrl: null, limits: null, lastError: null, busy: false };

function chooseLanguage() {
  const saved = localStorage.getItem('wanwu.lang');
  if (saved && TEXT[saved]) return saved;
  const langs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || 'en'];
  return String(langs[0]).toLowerCase().startsWith('zh') ? 'zh' : 'en';
}

function t() {
  return TEXT[state.lang];
}

function applyLanguage() {
  const text = t();
  document.documentElement.lang = state.lang === 'zh' ? 'zh-CN' : 'en';
  for (const el of document.querySelectorAll('[data-i18n]')) {
    const value = text[el.dataset.i18n];
    if (typeof value === 'string') el.textContent = value;
  }
  $('lang').textContent = text.switchTo;
  if (state.file) $('drop-hint').textContent = text.dropHintChange;
  if (state.busy) $('classify').textContent = text.classifying;
  updateModelInfo();
  if (state.lastError) showError(state.lastError.kind, state.lastError.detail, state.lastError.arg);
  if (state.lastResult) showResult(state.lastResult);
}

function authHeaders() {
  const token = localStorage.getItem('wanwu.token');
  return token ? { Authorization: 'Bearer ' + token } : {};
}

function showError(kind, detail, arg) {
  state.lastError = { kind, detail, arg };
  const errors = t().errors;
  let message = errors[kind] !== undefined ? errors[kind] : errors.other;
  if (typeof message === 'function') message = message(arg);
  const box = $('error');
  box.textContent = message;
  if (detail) {
    const small = document.createElement('span');
    small.className = 'detail';
    small.textContent = detail;
    box.appendChild(small);
  }
  box.hidden = false;
}

function clearError() {
  state.lastError = null;
  $('error').hidden = true;
}

async function errorDetail(response) {
  try {
    const body = await response.json();
    return body && body.error ? String(body.error) : '';
  } catch (e) {
    return '';
  }
}

function updateModelInfo() {
  const select = $('model');
  const m = state.models && state.models.find((x) => x.name === select.value);
  $('model-info').textContent = m ? t().modelInfo(m) : '';
}

async function loadModels() {
  let response;
  try {
    response = await fetch('/api/v1/models', { headers: authHeaders() });
  } catch (e) {
    showError('network');
    return;
  }
  if (response.status === 401) {
    $('token-box').hidden = false;
    showError(401);
    return;
  }
  if (!response.ok) {
    showError(response.status === 503 ? 503 : 'noModels', await errorDetail(response));
    if (response.status === 503) setTimeout(loadModels, 2000);
    return;
  }
  const info = await response.json();
  clearError();
  state.models = info.models;
  state.limits = { maxUploadBytes: info.max_upload_bytes };
  const select = $('model');
  select.textContent = '';
  for (const m of info.models) {
    const option = document.createElement('option');
    option.value = m.name;
    option.textContent = m.name;
    if (m.name === info.default) option.selected = true;
    select.appendChild(option);
  }
  updateModelInfo();
  updateButton();
}

function updateButton() {
  $('classify').disabled = !state.file || !state.models || state.busy;
}

function useFile(file) {
  if (!file) return;
  clearError();
  if (file.type && !file.type.startsWith('image/')) {
    showError('notImage', file.name);
    return;
  }
  if (state.limits && file.size > state.limits.maxUploadBytes) {
    showError('tooLarge', file.name, Math.floor(state.limits.maxUploadBytes / 1048576));
    return;
  }
  state.file = file;
  state.lastResult = null;
  $('result').hidden = true;
  if (state.previewUrl) URL.revokeObjectURL(state.previewUrl);
  state.previewUrl = URL.createObjectURL(file);
  const preview = $('preview');
  // A file the browser cannot draw gets no broken-image icon; the server decides.
  preview.onerror = () => { preview.hidden = true; };
  preview.src = state.previewUrl;
  preview.alt = file.name || '';
  preview.hidden = false;
  $('drop-hint').textContent = t().dropHintChange;
  $('file-name').textContent = file.name ? `${file.name} · ${(file.size / 1024).toFixed(0)} KB` : '';
  updateButton();
}

function showResult(result) {
  state.lastResult = result;
  const list = $('results');
  list.textContent = '';
  for (const entry of result.top) {
    const li = document.createElement('li');
    const line = document.createElement('div');
    line.className = 'line';
    const label = document.createElement('span');
    label.className = 'label';
    label.textContent = entry.label;
    const pct = document.createElement('span');
    pct.className = 'pct';
    pct.textContent = (entry.prob * 100).toFixed(1) + '%';
    line.append(label, pct);
    const track = document.createElement('div');
    track.className = 'track';
    const fill = document.createElement('div');
    fill.className = 'fill';
    fill.style.width = Math.max(0, Math.min(100, entry.prob * 100)).toFixed(1) + '%';
    track.appendChild(fill);
    li.append(line, track);
    list.appendChild(li);
  }
  $('timings').textContent = t().timings(result.ms);
  $('result').hidden = false;
}

async function classify() {
  if (!state.file || state.busy) return;
  clearError();
  state.busy = true;
  updateButton();
  const button = $('classify');
  button.textContent = t().classifying;
  const model = encodeURIComponent($('model').value);
  const headers = Object.assign({ 'Content-Type': state.file.type || 'application/octet-stream' }, authHeaders());
  try {
    let response;
    try {
      response = await fetch(`/api/v1/classify?model=${model}&top=3`, { method: 'POST', headers, body: state.file });
    } catch (e) {
      showError('network');
      return;
    }
    if (!response.ok) {
      if (response.status === 401) $('token-box').hidden = false;
      showError(response.status, await errorDetail(response));
      return;
    }
    showResult(await response.json());
  } finally {
    state.busy = false;
    button.textContent = t().classify;
    updateButton();
  }
}

function firstImage(items) {
  for (const item of items || []) {
    if (item.kind === 'file') {
      const f = item.getAsFile();
      if (f) return f;
    }
  }
  return null;
}

function init() {
  state.lang = chooseLanguage();
  applyLanguage();

  $('lang').addEventListener('click', () => {
    state.lang = state.lang === 'zh' ? 'en' : 'zh';
    localStorage.setItem('wanwu.lang', state.lang);
    applyLanguage();
  });
  $('file').addEventListener('change', (e) => useFile(e.target.files[0]));
  $('model').addEventListener('change', updateModelInfo);
  $('classify').addEventListener('click', classify);
  $('token-save').addEventListener('click', () => {
    const token = $('token').value.trim();
    if (token) localStorage.setItem('wanwu.token', token);
    else localStorage.removeItem('wanwu.token');
    $('token-box').hidden = true;
    loadModels();
  });

  const drop = $('drop');
  drop.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      $('file').click();
    }
  });
  for (const type of ['dragenter', 'dragover']) {
    drop.addEventListener(type, (e) => {
      e.preventDefault();
      drop.classList.add('over');
    });
  }
  for (const type of ['dragleave', 'drop']) drop.addEventListener(type, () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    useFile(e.dataTransfer.files[0] || firstImage(e.dataTransfer.items));
  });
  // A dropped file that misses the target must not make the browser leave the page.
  window.addEventListener('dragover', (e) => e.preventDefault());
  window.addEventListener('drop', (e) => e.preventDefault());
  document.addEventListener('paste', (e) => {
    const file = firstImage(e.clipboardData && e.clipboardData.items);
    if (file) {
      e.preventDefault();
      useFile(file);
    }
  });

  loadModels();
}

document.addEventListener('DOMContentLoaded', init);
