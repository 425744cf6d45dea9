; Inno Setup script for Pinyin IME on Windows (per-user install, no administrator rights).
;
; On a Windows machine with Python 3.11, Git Bash and Inno Setup 6 (iscc on PATH):
;   bash scripts/build_installer          -> dist\pinyin-ime\ (PyInstaller one-folder, via build.spec)
;   iscc /DAppVersion=0.1.0 packaging\windows\pinyin-ime.iss
;                                         -> dist\pinyin-ime-0.1.0-windows-x64-setup.exe
; scripts/build_installer runs iscc itself when it finds it. Not built or tested on the project's Linux CI.

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#define AppName "Pinyin IME"
#define RepoRoot "..\.."

[Setup]
AppId={{6B1D5B0E-3C55-4E1B-9A43-7A5C2F1E9D10}
AppName={#AppName}
AppVersion={#AppVersion}
AppPublisher=pinyin-ime
DefaultDirName={localappdata}\Programs\pinyin-ime
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir={#RepoRoot}\dist
OutputBaseFilename=pinyin-ime-{#AppVersion}-windows-x64-setup
SetupIconFile={#RepoRoot}\packaging\pinyin-ime.ico
UninstallDisplayIcon={app}\pinyin-ime-app.exe
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern

[Languages]
Name: "en"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "{#RepoRoot}\dist\pinyin-ime\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\{#AppName}"; Filename: "{app}\pinyin-ime-app.exe"
Name: "{group}\Uninstall {#AppName}"; Filename: "{uninstallexe}"
Name: "{userdesktop}\{#AppName}"; Filename: "{app}\pinyin-ime-app.exe"; Tasks: desktopicon

[Run]
Filename: "{app}\pinyin-ime-app.exe"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent

; Your data (%LOCALAPPDATA%\pinyin-ime: history, learned phrases, your models) is not removed on uninstall.
