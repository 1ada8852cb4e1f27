// 2048: a 4x4 board; a move slides every tile one way and merges equal neighbours once.
(function () {
  "use strict";
  var SIZE = 4;
  var board, score, moves;
  var boardEl = document.getElementById("board");
  var scoreEl = document.getElementById("score");
  var bestEl = document.getElementById("best");
  var statusEl = document.getElementById("status");

  function best() { return Number(localStorage.getItem("best2048") || 0); }

  function empty() {
    var cells = [];
    for (var r = 0; r < SIZE; r++) for (var c = 0; c < SIZE; c++) if (!board[r][c]) cells.push([r, c]);
    return cells;
  }

  function addTile() {
    var cells = empty();
    if (!cells.length) return;
    var pick = cells[Math.floor(Math.random() * cells.length)];
    board[pick[0]][pick[1]] = Math.random() < 0.9 ? 2 : 4;
  }

  function newGame() {
    board = [];
    for (var r = 0; r < SIZE; r++) board.push([0, 0, 0, 0]);
    score = 0; moves = 0;
    addTile(); addTile();
    statusEl.textContent = "";
    draw();
  }

  // Slide one row to the left, merging pairs; returns the new row and the points scored.
  function slide(row) {
    var tiles = row.filter(function (v) { return v; });
    var out = [], points = 0;
    for (var i = 0; i < tiles.length; i++) {
      if (tiles[i] === tiles[i + 1]) { out.push(tiles[i] * 2); points += tiles[i] * 2; i++; }
      else out.push(tiles[i]);
    }
    while (out.length < SIZE) out.push(0);
    return { row: out, points: points };
  }

  function rotate(b) { // clockwise
    var out = [];
    for (var c = 0; c < SIZE; c++) { out.push([]); for (var r = SIZE - 1; r >= 0; r--) out[c].push(b[r][c]); }
    return out;
  }

  function move(dir) { // 0 left, 1 down, 2 right, 3 up: rotate so the move is "left"
    var turns = { left: 0, down: 1, right: 2, up: 3 }[dir];
    var b = board;
    for (var i = 0; i < turns; i++) b = rotate(b);
    var changed = false, gained = 0;
    b = b.map(function (row) {
      var res = slide(row);
      if (res.row.join() !== row.join()) changed = true;
      gained += res.points;
      return res.row;
    });
    for (var j = 0; j < (4 - turns) % 4; j++) b = rotate(b);
    if (!changed) return;
    board = b; score += gained; moves += 1;
    addTile();
    if (score > best()) localStorage.setItem("best2048", String(score));
    draw();
    if (board.some(function (row) { return row.indexOf(2048) >= 0; })) statusEl.textContent = "You win!";
    else if (!canMove()) statusEl.textContent = "Game over.";
  }

  function canMove() {
    if (empty().length) return true;
    for (var r = 0; r < SIZE; r++) for (var c = 0; c < SIZE; c++) {
      if (c + 1 < SIZE && board[r][c] === board[r][c + 1]) return true;
      if (r + 1 < SIZE && board[r][c] === board[r + 1][c]) return true;
    }
    return false;
  }

  function draw() {
    boardEl.textContent = "";
    for (var r = 0; r < SIZE; r++) for (var c = 0; c < SIZE; c++) {
      var v = board[r][c];
      var cell = document.createElement("div");
      cell.className = "cell" + (v ? " v" + (v > 2048 ? "big" : v) : "");
      cell.textContent = v ? String(v) : "";
      cell.setAttribute("data-value", String(v));
      boardEl.appendChild(cell);
    }
    boardEl.setAttribute("data-moves", String(moves));
    scoreEl.textContent = String(score);
    bestEl.textContent = String(best());
  }

  var KEYS = { ArrowLeft: "left", ArrowRight: "right", ArrowUp: "up", ArrowDown: "down",
               a: "left", d: "right", w: "up", s: "down" };
  document.addEventListener("keydown", function (e) {
    var dir = KEYS[e.key];
    if (dir) { e.preventDefault(); move(dir); }
  });
  var touch = null;
  boardEl.addEventListener("touchstart", function (e) { touch = e.touches[0]; }, { passive: true });
  boardEl.addEventListener("touchend", function (e) {
    if (!touch) return;
    var t = e.changedTouches[0], dx = t.clientX - touch.clientX, dy = t.clientY - touch.clientY;
    if (Math.max(Math.abs(dx), Math.abs(dy)) > 30) {
      move(Math.abs(dx) > Math.abs(dy) ? (dx > 0 ? "right" : "left") : (dy > 0 ? "down" : "up"));
    }
    touch = null;
  });
  document.getElementById("new-game").addEventListener("click", newGame);
  window.game2048 = { board: function () { return board; }, moves: function () { return moves; } };
  newGame();
})();
