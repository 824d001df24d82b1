<?xml version="1.0" encoding="UTF-8"?>
<!-- The default export transform of vCard 3rd parties (CardDAV): one PCC
     person-details into one xCard card (RFC 6351), which xdmsd's vCard
     writer turns into the vCard version the 3rd party's book uses (it adds
     VERSION itself). The reverse of xcard2pcc.xsl (SPEC §5.2).

     Input:  <pcc xmlns="urn:oma:xml:cab:pcc"> (its first person-details is
             used; the IWF hands over the part the request selected, already
             filtered by its fields) or a bare <person-details>.
     Output: <vcards xmlns="urn:ietf:params:xml:ns:vcard-4.0"><vcard>.
       name-entry (not Alias) -> FN (display-name, else given and family);
                               the first one also -> N (family, given,
                               middle; first is read as given).
       name-entry Alias       -> NICKNAME.
       tel                    -> TEL with a tel: URI; tel-type Mobile/Work/
                               Home/Fax -> TYPE cell, work, home, fax.
       uri-entry Email        -> EMAIL (without mailto:).
       uri-entry SIP-URI, IM  -> IMPP; any other uri-entry -> URL.
       address-entry          -> ADR: addr-string as the street component
                               (a PCC address is one string), label ->
                               LABEL, address-type Home/Work -> TYPE.
       birth                  -> BDAY (a date), BIRTHPLACE (RFC 6474).
       career                 -> ORG (employer), TITLE (duty).
       media-entry            -> PHOTO, or LOGO / SOUND when its label says
                               so; media-type -> MEDIATYPE.
     @pref -> PREF, xml:lang -> LANGUAGE. What vCard has no place for goes
     into x-cab-* parameters (RFC 6350 §3.3 allows x-names), which
     xcard2pcc.xsl reads back: name-type, the tel-type Fixed and Email,
     xui-type, labels, the exact addr-uri-type, address types other than
     Home and Work, a non-Gregorian calendar.

     Parameters: uid (optional) is written as the card's UID; when the PCC
     has no name at all, FN (which vCard requires) is remote-user, else the
     xui. -->
<xsl:stylesheet version="1.0"
                xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
                xmlns:p="urn:oma:xml:cab:pcc"
                xmlns="urn:ietf:params:xml:ns:vcard-4.0"
                exclude-result-prefixes="p">
  <xsl:output method="xml" encoding="UTF-8" indent="no"/>
  <xsl:strip-space elements="*"/>
  <xsl:param name="xui"/>
  <xsl:param name="remote-user"/>
  <xsl:param name="uid"/>

  <xsl:template match="/">
    <xsl:variable name="pd" select="(/p:pcc/p:person-details | /p:person-details)[1]"/>
    <xsl:if test="not($pd)">
      <xsl:message terminate="yes">the document is not a PCC person-details</xsl:message>
    </xsl:if>
    <vcards>
      <vcard>
        <xsl:apply-templates select="$pd"/>
        <xsl:if test="$uid != ''">
          <uid>
            <xsl:choose>
              <xsl:when test="contains($uid, ':')"><uri><xsl:value-of select="$uid"/></uri></xsl:when>
              <xsl:otherwise><text><xsl:value-of select="$uid"/></text></xsl:otherwise>
            </xsl:choose>
          </uid>
        </xsl:if>
      </vcard>
    </vcards>
  </xsl:template>

  <xsl:template match="p:person-details">
    <xsl:variable name="names" select="p:name/p:name-entry[not(@name-type = 'Alias')]"/>
    <!-- names -->
    <xsl:for-each select="$names">
      <fn>
        <xsl:call-template name="parameters">
          <xsl:with-param name="x-name-type" select="@name-type"/>
        </xsl:call-template>
        <text>
          <xsl:choose>
            <xsl:when test="p:display-name"><xsl:value-of select="p:display-name"/></xsl:when>
            <xsl:otherwise>
              <xsl:value-of select="normalize-space(concat(p:given | p:first, ' ', p:family))"/>
            </xsl:otherwise>
          </xsl:choose>
        </text>
      </fn>
    </xsl:for-each>
    <xsl:if test="not($names)">
      <fn>
        <text>
          <xsl:choose>
            <xsl:when test="$remote-user != ''"><xsl:value-of select="$remote-user"/></xsl:when>
            <xsl:otherwise><xsl:value-of select="$xui"/></xsl:otherwise>
          </xsl:choose>
        </text>
      </fn>
    </xsl:if>
    <xsl:for-each select="$names[1][p:family or p:given or p:first or p:middle]">
      <n>
        <xsl:call-template name="parts"><xsl:with-param name="name" select="'surname'"/><xsl:with-param name="values" select="p:family"/></xsl:call-template>
        <xsl:call-template name="parts"><xsl:with-param name="name" select="'given'"/><xsl:with-param name="values" select="p:given | p:first"/></xsl:call-template>
        <xsl:call-template name="parts"><xsl:with-param name="name" select="'additional'"/><xsl:with-param name="values" select="p:middle"/></xsl:call-template>
        <prefix/><suffix/>
      </n>
    </xsl:for-each>
    <xsl:for-each select="p:name/p:name-entry[@name-type = 'Alias']">
      <nickname>
        <xsl:call-template name="parameters"/>
        <text><xsl:value-of select="p:display-name"/></text>
      </nickname>
    </xsl:for-each>

    <!-- tel, email, impp, url, in the PCC's order -->
    <xsl:for-each select="p:comm-addr/p:tel | p:comm-addr/p:uri-entry">
      <xsl:choose>
        <xsl:when test="self::p:tel">
          <xsl:variable name="t" select="normalize-space(p:tel-nb/p:tel-string)"/>
          <tel>
            <xsl:call-template name="parameters">
              <xsl:with-param name="type">
                <xsl:choose>
                  <xsl:when test="@tel-type = 'Mobile'">cell</xsl:when>
                  <xsl:when test="@tel-type = 'Work'">work</xsl:when>
                  <xsl:when test="@tel-type = 'Home'">home</xsl:when>
                  <xsl:when test="@tel-type = 'Fax'">fax</xsl:when>
                </xsl:choose>
              </xsl:with-param>
              <xsl:with-param name="x-tel-type" select="@tel-type[. = 'Fixed' or . = 'Email']"/>
              <xsl:with-param name="x-xui-type" select="@xui-type"/>
              <xsl:with-param name="x-label" select="p:label"/>
            </xsl:call-template>
            <uri>
              <xsl:if test="not(starts-with($t, 'tel:'))">tel:</xsl:if>
              <xsl:value-of select="$t"/>
            </uri>
          </tel>
        </xsl:when>
        <xsl:when test="@addr-uri-type = 'Email'">
          <xsl:variable name="u" select="normalize-space(p:addr-uri)"/>
          <email>
            <xsl:call-template name="parameters">
              <xsl:with-param name="x-label" select="p:label"/>
            </xsl:call-template>
            <text>
              <xsl:choose>
                <xsl:when test="starts-with($u, 'mailto:')"><xsl:value-of select="substring($u, 8)"/></xsl:when>
                <xsl:otherwise><xsl:value-of select="$u"/></xsl:otherwise>
              </xsl:choose>
            </text>
          </email>
        </xsl:when>
        <xsl:otherwise>
          <xsl:variable name="prop">
            <xsl:choose>
              <xsl:when test="@addr-uri-type = 'SIP-URI' or @addr-uri-type = 'IM'">impp</xsl:when>
              <xsl:otherwise>url</xsl:otherwise>
            </xsl:choose>
          </xsl:variable>
          <xsl:element name="{$prop}">
            <xsl:call-template name="parameters">
              <xsl:with-param name="x-addr-uri-type" select="@addr-uri-type"/>
              <xsl:with-param name="x-label" select="p:label"/>
            </xsl:call-template>
            <uri><xsl:value-of select="normalize-space(p:addr-uri)"/></uri>
          </xsl:element>
        </xsl:otherwise>
      </xsl:choose>
    </xsl:for-each>

    <!-- addresses -->
    <xsl:for-each select="p:address/p:address-entry">
      <adr>
        <xsl:call-template name="parameters">
          <xsl:with-param name="type">
            <xsl:choose>
              <xsl:when test="@address-type = 'Home'">home</xsl:when>
              <xsl:when test="@address-type = 'Work'">work</xsl:when>
            </xsl:choose>
          </xsl:with-param>
          <xsl:with-param name="x-address-type" select="@address-type[. != 'Home' and . != 'Work']"/>
          <xsl:with-param name="label" select="p:label"/>
        </xsl:call-template>
        <pobox/><ext/>
        <street><xsl:value-of select="p:address-data/p:addr-string"/></street>
        <locality/><region/><code/><country/>
      </adr>
    </xsl:for-each>

    <!-- birth -->
    <xsl:for-each select="p:birth/p:birth-date">
      <bday>
        <xsl:choose>
          <xsl:when test="p:date">
            <date><xsl:value-of select="translate(normalize-space(p:date), '-', '')"/></date>
          </xsl:when>
          <xsl:otherwise>
            <parameters><x-cab-cal-type><text><xsl:value-of select="p:non-greg-date/@cal-type"/></text></x-cab-cal-type></parameters>
            <text><xsl:value-of select="p:non-greg-date"/></text>
          </xsl:otherwise>
        </xsl:choose>
      </bday>
    </xsl:for-each>
    <xsl:for-each select="p:birth/p:place">
      <birthplace><text><xsl:value-of select="."/></text></birthplace>
    </xsl:for-each>

    <!-- career -->
    <xsl:for-each select="p:career/p:employer"><org><text><xsl:value-of select="."/></text></org></xsl:for-each>
    <xsl:for-each select="p:career/p:duty"><title><text><xsl:value-of select="."/></text></title></xsl:for-each>

    <!-- media -->
    <xsl:for-each select="p:media-list/p:media-entry">
      <xsl:variable name="label" select="normalize-space(p:label)"/>
      <xsl:variable name="prop">
        <xsl:choose>
          <xsl:when test="$label = 'logo' or $label = 'sound'"><xsl:value-of select="$label"/></xsl:when>
          <xsl:otherwise>photo</xsl:otherwise>
        </xsl:choose>
      </xsl:variable>
      <xsl:element name="{$prop}">
        <xsl:call-template name="parameters">
          <xsl:with-param name="mediatype" select="p:media-type"/>
          <xsl:with-param name="x-label" select="p:label[. != 'photo' and . != 'logo' and . != 'sound']"/>
        </xsl:call-template>
        <uri><xsl:value-of select="normalize-space(p:media/p:media-url)"/></uri>
      </xsl:element>
    </xsl:for-each>
  </xsl:template>

  <!-- One structured-name component per value, or one empty element. -->
  <xsl:template name="parts">
    <xsl:param name="name"/>
    <xsl:param name="values"/>
    <xsl:for-each select="$values"><xsl:element name="{$name}"><xsl:value-of select="."/></xsl:element></xsl:for-each>
    <xsl:if test="not($values)"><xsl:element name="{$name}"/></xsl:if>
  </xsl:template>

  <!-- The <parameters> of the current entry: @pref and @xml:lang, and
       whichever of the others the caller passes. Nothing when empty. -->
  <xsl:template name="parameters">
    <xsl:param name="type"/>
    <xsl:param name="label"/>
    <xsl:param name="mediatype"/>
    <xsl:param name="x-name-type"/>
    <xsl:param name="x-tel-type"/>
    <xsl:param name="x-xui-type"/>
    <xsl:param name="x-addr-uri-type"/>
    <xsl:param name="x-address-type"/>
    <xsl:param name="x-label"/>
    <xsl:variable name="lang" select="@xml:lang"/>
    <xsl:if test="@pref or $lang or string($type) or string($label) or string($mediatype) or string($x-name-type)
                  or string($x-tel-type) or string($x-xui-type) or string($x-addr-uri-type)
                  or string($x-address-type) or string($x-label)">
      <parameters>
        <xsl:if test="@pref"><pref><integer><xsl:value-of select="@pref"/></integer></pref></xsl:if>
        <xsl:if test="$lang"><language><language-tag><xsl:value-of select="$lang"/></language-tag></language></xsl:if>
        <xsl:if test="string($type)"><type><text><xsl:value-of select="$type"/></text></type></xsl:if>
        <xsl:if test="string($label)"><label><text><xsl:value-of select="$label"/></text></label></xsl:if>
        <xsl:if test="string($mediatype)"><mediatype><text><xsl:value-of select="$mediatype"/></text></mediatype></xsl:if>
        <xsl:if test="string($x-name-type)"><x-cab-name-type><text><xsl:value-of select="$x-name-type"/></text></x-cab-name-type></xsl:if>
        <xsl:if test="string($x-tel-type)"><x-cab-tel-type><text><xsl:value-of select="$x-tel-type"/></text></x-cab-tel-type></xsl:if>
        <xsl:if test="string($x-xui-type)"><x-cab-xui-type><text><xsl:value-of select="$x-xui-type"/></text></x-cab-xui-type></xsl:if>
        <xsl:if test="string($x-addr-uri-type)"><x-cab-addr-uri-type><text><xsl:value-of select="$x-addr-uri-type"/></text></x-cab-addr-uri-type></xsl:if>
        <xsl:if test="string($x-address-type)"><x-cab-address-type><text><xsl:value-of select="$x-address-type"/></text></x-cab-address-type></xsl:if>
        <xsl:if test="string($x-label)"><x-cab-label><text><xsl:value-of select="$x-label"/></text></x-cab-label></xsl:if>
      </parameters>
    </xsl:if>
  </xsl:template>
</xsl:stylesheet>
